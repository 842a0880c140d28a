package virtfs

import (
	"context"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Extended attributes (QEMU's mapped-xattr security model keeps the
// guest's owners and modes in user.virtfs.*) and statfs.

var (
	_ fs.NodeGetxattrer    = (*node)(nil)
	_ fs.NodeSetxattrer    = (*node)(nil)
	_ fs.NodeListxattrer   = (*node)(nil)
	_ fs.NodeRemovexattrer = (*node)(nil)
)

// sized answers a get or list: the size when dest is empty (the caller
// asks how much to allocate), ERANGE when it is too small.
func sized(v []byte, dest []byte) (uint32, syscall.Errno) {
	if len(dest) == 0 {
		return uint32(len(v)), 0
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	un, errno := n.pin()
	if errno != 0 {
		return 0, errno
	}
	defer un.Release()
	v, err := un.GetXattr(attr)
	if err != nil {
		return 0, errnoOf(err)
	}
	return sized(v, dest)
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	un, errno := n.pin()
	if errno != 0 {
		return 0, errno
	}
	defer un.Release()
	names, err := un.ListXattr()
	if err != nil {
		return 0, errnoOf(err)
	}
	var b strings.Builder
	for _, nm := range names {
		b.WriteString(nm)
		b.WriteByte(0)
	}
	return sized([]byte(b.String()), dest)
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	un, errno := n.pin()
	if errno != 0 {
		return errno
	}
	defer un.Release()
	return errnoOf(un.SetXattr(attr, data, int(flags)))
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	un, errno := n.pin()
	if errno != 0 {
		return errno
	}
	defer un.Release()
	return errnoOf(un.RemoveXattr(attr))
}

// Statfs answers with the upper layer's filesystem (the union's StatFS).
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	st, err := n.t.u.StatFS()
	if err != nil {
		return errnoOf(err)
	}
	out.Blocks, out.Bfree, out.Bavail = st.Blocks, st.Bfree, st.Bavail
	out.Files, out.Ffree = st.Files, st.Ffree
	out.Bsize, out.Frsize, out.NameLen = uint32(st.Bsize), uint32(st.Frsize), uint32(st.Namelen)
	return 0
}
