package virtfs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/union9p/union9p/union"
)

// Namespace changes. New objects belong to the caller (QEMU; with
// security_model=passthrough it then gives them the guest's owner with
// chown, as on any host filesystem).

var (
	_ fs.NodeCreater   = (*node)(nil)
	_ fs.NodeMkdirer   = (*node)(nil)
	_ fs.NodeMknoder   = (*node)(nil)
	_ fs.NodeSymlinker = (*node)(nil)
	_ fs.NodeLinker    = (*node)(nil)
	_ fs.NodeUnlinker  = (*node)(nil)
	_ fs.NodeRmdirer   = (*node)(nil)
	_ fs.NodeRenamer   = (*node)(nil)
)

// owner is who asks (the request's caller).
func owner(ctx context.Context) union.Owner {
	if c, ok := fuse.FromContext(ctx); ok {
		return union.Owner{UID: c.Uid, GID: c.Gid}
	}
	return union.Owner{}
}

// ownerIn is who owns a new object in dir: the caller, with dir's group
// when dir is setgid (as the kernel does for local filesystems; a FUSE
// server must do it itself). setgid reports whether a new directory
// must then be setgid too. Over virtfs QEMU then chowns to what the
// guest's 9p client chose (which applied the same rule); over virtiofs
// the caller is the guest's process and this is the rule that applies.
func ownerIn(ctx context.Context, dir *union.Node) (o union.Owner, setgid bool) {
	o = owner(ctx)
	if a, err := dir.Attr(); err == nil && a.Mode&syscall.S_ISGID != 0 {
		o.GID = a.GID
		return o, true
	}
	return o, false
}

// ownerFor is who owns a new object n makes for the caller of ctx
// (ownerIn, then squashed: the tree's union.Squash).
func (n *node) ownerFor(ctx context.Context, dir *union.Node) (union.Owner, bool) {
	o, setgid := ownerIn(ctx, dir)
	return n.t.squash.Owner(o), setgid
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	un, errno := n.pin()
	if errno != 0 {
		return nil, nil, 0, errno
	}
	defer un.Release()
	o, _ := n.ownerFor(ctx, un)
	c, f, err := un.Create(name, int(flags), mode, o)
	if err != nil {
		return nil, nil, 0, errnoOf(err)
	}
	cun := c.Retain() // for opened, after adopt took c
	defer cun.Release()
	ch, errno := adopt(ctx, n, c, out)
	if errno != 0 {
		f.Close()
		return nil, nil, 0, errno
	}
	cn := ch.Operations().(*node) // every Inode of this tree is a *node
	cn.opened(cun)
	fopen, direct := cn.openFlags(flags)
	return ch, newFile(f, cn, direct), fopen, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.made(ctx, out, func(un *union.Node) (*union.Node, error) {
		o, setgid := n.ownerFor(ctx, un)
		if setgid {
			mode |= syscall.S_ISGID
		}
		return un.Mkdir(name, mode, o)
	})
}

func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if err := n.t.squash.Mknod(mode); err != nil {
		return nil, errnoOf(err)
	}
	return n.made(ctx, out, func(un *union.Node) (*union.Node, error) {
		o, _ := n.ownerFor(ctx, un)
		return un.Mknod(name, mode, uint64(dev), o)
	})
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.made(ctx, out, func(un *union.Node) (*union.Node, error) {
		o, _ := n.ownerFor(ctx, un)
		return un.Symlink(name, target, o)
	})
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t, ok := target.(*node)
	if !ok {
		return nil, syscall.EXDEV
	}
	tun, errno := t.pin()
	if errno != 0 {
		return nil, errno
	}
	defer tun.Release()
	return n.made(ctx, out, func(un *union.Node) (*union.Node, error) { return un.Link(tun, name) })
}

// made runs a change that makes one object in n and adopts it.
func (n *node) made(ctx context.Context, out *fuse.EntryOut, make func(*union.Node) (*union.Node, error)) (*fs.Inode, syscall.Errno) {
	un, errno := n.pin()
	if errno != 0 {
		return nil, errno
	}
	defer un.Release()
	c, err := make(un)
	if err != nil {
		return nil, errnoOf(err)
	}
	return adopt(ctx, n, c, out)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno { return n.remove(name, false) }

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno { return n.remove(name, true) }

func (n *node) remove(name string, dir bool) syscall.Errno {
	un, errno := n.pin()
	if errno != 0 {
		return errno
	}
	defer un.Release()
	return errnoOf(un.Unlink(name, dir))
}

// Rename is rename(2) without flags: QEMU's 9p server asks for nothing
// else, and RENAME_NOREPLACE or RENAME_EXCHANGE cannot be made atomic
// from the union's Rename (EINVAL, as a filesystem without them).
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if flags != 0 {
		return syscall.EINVAL
	}
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	un, errno := n.pin()
	if errno != 0 {
		return errno
	}
	defer un.Release()
	nun, errno := np.pin()
	if errno != 0 {
		return errno
	}
	defer nun.Release()
	return errnoOf(un.Rename(name, nun, newName))
}
