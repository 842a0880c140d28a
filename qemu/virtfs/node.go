package virtfs

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// CacheTTL is how long the host kernel may keep entries, negative
// entries and attributes without asking again (see the package comment
// for why that is safe).
const CacheTTL = time.Hour

// node is one object of the union as the kernel knows it (one FUSE node
// id). It holds one reference to its union.Node, dropped when the kernel
// forgets the node.
type node struct {
	fs.Inode
	u  *union.Union // for statfs
	b  *budget      // counts the kernel's known objects
	un atomic.Pointer[union.Node]

	// writeDirect: answer write-only opens FOPEN_DIRECT_IO (virtio-fs;
	// set on the root, inherited by every node). staleCache: a direct
	// write changed the file since its last open (directio.go).
	writeDirect bool
	staleCache  atomic.Bool
	squash      Squash // set on the root, inherited by every node (squash.go)

	mu      sync.Mutex    // guards retired and shared
	retired []*union.Node // replaced by adopt; released on forget
	shared  *union.File   // the listing of handle-less directory reads (noopendir.go)
}

var (
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeOnForgetter    = (*node)(nil)
	_ fs.NodeReadlinker     = (*node)(nil)
	_ fs.NodeStatfser       = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
)

func newNode(u *union.Union, b *budget, un *union.Node) *node {
	n := &node{u: u, b: b}
	n.un.Store(un)
	return n
}

// union returns the union.Node; it stays usable for the caller even if
// adopt replaces it meanwhile: a replaced Node is released only when
// the kernel forgets the node, after its last request.
func (n *node) union() *union.Node { return n.un.Load() }

// OnForget drops the node's reference: the kernel will not name it again.
func (n *node) OnForget() {
	n.b.forgotten()
	if un := n.un.Swap(nil); un != nil {
		un.Release()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.shared != nil {
		n.shared.Close()
		n.shared = nil
	}
	for _, un := range n.retired {
		un.Release()
	}
	n.retired = nil
}

// adopt makes the kernel's node for un, a union.Node with one reference
// the caller gives away, under parent, and fills out. go-fuse keeps one
// Inode per stable id: when it already has one, the new reference is
// dropped, or replaces the one the Inode holds if the union made a new
// Node for that id (its object was removed and the id came back).
func adopt(ctx context.Context, parent *node, un *union.Node, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	a, err := un.Attr()
	if err != nil {
		un.Release()
		return nil, errnoOf(err)
	}
	fillAttr(&out.Attr, &a)
	out.SetEntryTimeout(CacheTTL)
	out.SetAttrTimeout(CacheTTL)
	n := newNode(parent.u, parent.b, un)
	n.writeDirect = parent.writeDirect
	n.squash = parent.squash
	ch := parent.NewInode(ctx, n, fs.StableAttr{Mode: a.Mode & unix.S_IFMT, Ino: a.ID})
	if ch.Operations() == n {
		n.b.adopted()
	}
	if old, ok := ch.Operations().(*node); ok && old != n {
		switch prev := old.un.Swap(un); {
		case prev == un: // the same Node: one reference too many
			prev.Release()
		case prev != nil: // may be in use by a request in flight
			old.mu.Lock()
			old.retired = append(old.retired, prev)
			old.mu.Unlock()
		}
	}
	return ch, 0
}

// fillAttr copies the union's attributes into the kernel's.
func fillAttr(out *fuse.Attr, a *union.Attr) {
	out.Ino = a.ID
	out.Mode = a.Mode
	out.Nlink = uint32(a.Nlink)
	out.Owner = fuse.Owner{Uid: a.UID, Gid: a.GID}
	out.Rdev = uint32(unix.Mkdev(unix.Major(a.Rdev), unix.Minor(a.Rdev)))
	out.Size = a.Size
	out.Blocks = a.Blocks
	out.Blksize = uint32(a.Blksize)
	out.Atime, out.Atimensec = uint64(a.Atime.Sec), uint32(a.Atime.Nsec)
	out.Mtime, out.Mtimensec = uint64(a.Mtime.Sec), uint32(a.Mtime.Nsec)
	out.Ctime, out.Ctimensec = uint64(a.Ctime.Sec), uint32(a.Ctime.Nsec)
}

// getattr fills out with un's attributes.
func getattr(un *union.Node, out *fuse.AttrOut) syscall.Errno {
	if un == nil {
		return syscall.ESTALE
	}
	a, err := un.Attr()
	if err != nil {
		return errnoOf(err)
	}
	fillAttr(&out.Attr, &a)
	out.SetTimeout(CacheTTL)
	return 0
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	un := n.union()
	if un == nil {
		return nil, syscall.ESTALE
	}
	c, err := un.Lookup(name)
	if err != nil {
		return nil, errnoOf(err)
	}
	return adopt(ctx, n, c, out)
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return getattr(n.union(), out)
}

// Setattr applies the kernel's change: size, owner, mode, times (the
// union applies them in that order).
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	un := n.union()
	if un == nil {
		return syscall.ESTALE
	}
	var sa union.SetAttr
	if m, ok := in.GetMode(); ok {
		sa.SetMode, sa.Mode = true, m&0o7777
	}
	if uid, ok := in.GetUID(); ok {
		sa.SetUID, sa.UID = true, uid
	}
	if gid, ok := in.GetGID(); ok {
		sa.SetGID, sa.GID = true, gid
	}
	if sz, ok := in.GetSize(); ok {
		sa.SetSize, sa.Size = true, sz
	}
	sa.Atime, sa.AtimeAt = timeSet(in.Valid, fuse.FATTR_ATIME, fuse.FATTR_ATIME_NOW, in.Atime, in.Atimensec)
	sa.Mtime, sa.MtimeAt = timeSet(in.Valid, fuse.FATTR_MTIME, fuse.FATTR_MTIME_NOW, in.Mtime, in.Mtimensec)
	n.squash.setattr(&sa)
	if err := un.SetAttr(sa); err != nil {
		return errnoOf(err)
	}
	return getattr(un, out)
}

// timeSet reads one timestamp of a FUSE setattr.
func timeSet(valid, given, now uint32, sec uint64, nsec uint32) (union.TimeSet, unix.Timespec) {
	switch {
	case valid&now != 0:
		return union.TimeNow, unix.Timespec{}
	case valid&given != 0:
		return union.TimeGiven, unix.Timespec{Sec: int64(sec), Nsec: int64(nsec)}
	}
	return union.TimeOmit, unix.Timespec{}
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	un := n.union()
	if un == nil {
		return nil, syscall.ESTALE
	}
	t, err := un.Readlink()
	if err != nil {
		return nil, errnoOf(err)
	}
	return []byte(t), 0
}
