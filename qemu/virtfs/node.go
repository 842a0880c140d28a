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
// id). It holds one reference to its union.Node while the kernel knows
// it, or lets go of it while idle (hold.go) and finds the object again
// by its name when the kernel next asks.
type node struct {
	fs.Inode
	t    *tree  // what every node of the mount shares
	id   uint64 // the object's stable id; never changes
	root bool   // the root: always holds its union.Node

	// staleCache: a direct write changed the file since its last open
	// (directio.go).
	staleCache atomic.Bool

	mu        sync.Mutex  // guards the fields below (hold.go)
	un        *union.Node // nil: let go while idle, or forgotten
	opens     int         // open handles; a node with one never lets go
	forgotten bool        // the kernel forgot n: un stays nil
	shared    *union.File // the listing of handle-less directory reads (noopendir.go)

	// The held list's links, guarded by held.mu (hold.go).
	prev, next *node
	listed     bool
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

// tree is what every node of one mount shares: the union and the rules
// of the frontend serving it. It is set up before the first request and
// read-only after, but for readDirect, which each FUSE_INIT sets.
type tree struct {
	u *union.Union // for statfs and syncfs
	b *budget      // counts the kernel's known objects (nil over virtio-fs)
	h *held        // idle nodes that still hold their union.Node

	// writeDirect: answer write-only opens FOPEN_DIRECT_IO (virtio-fs,
	// directio.go). readDirect: the guest accepted
	// FUSE_DIRECT_IO_ALLOW_MMAP, so every open is (directmmap.go).
	writeDirect bool
	readDirect  atomic.Bool
	squash      union.Squash // owners of new and chowned objects (union.Squash, namespace.go)
}

// newNode makes the node of un in t, taking un's reference.
func newNode(t *tree, un *union.Node) *node {
	return &node{t: t, id: un.ID(), un: un}
}

// OnForget drops the node's reference: the kernel will not name it again.
func (n *node) OnForget() {
	n.t.b.forgotten()
	n.t.h.forget(n)
	n.mu.Lock()
	un, f := n.un, n.shared
	n.un, n.shared, n.forgotten = nil, nil, true
	n.mu.Unlock()
	if f != nil {
		f.Close()
	}
	if un != nil {
		un.Release()
	}
}

// adopt makes the kernel's node for un, a union.Node with one reference
// the caller gives away, under parent, and fills out. go-fuse keeps one
// Inode per stable id: when it already has one, the new reference is
// dropped, or replaces the one the Inode holds if the union made a new
// Node for that id (its object was removed and the id came back, or
// another name of a hard link), or if the Inode had let go of its own.
// The replaced reference is released at once: requests in flight pin
// their own (hold.go).
func adopt(ctx context.Context, parent *node, un *union.Node, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	a, err := un.Attr()
	if err != nil {
		un.Release()
		return nil, errnoOf(err)
	}
	fillAttr(&out.Attr, &a)
	out.SetEntryTimeout(CacheTTL)
	out.SetAttrTimeout(CacheTTL)
	n := newNode(parent.t, un)
	ch := parent.NewInode(ctx, n, fs.StableAttr{Mode: a.Mode & unix.S_IFMT, Ino: a.ID})
	if ch.Operations() == n {
		n.t.b.adopted()
		n.t.h.used(n)
		return ch, 0
	}
	if old, ok := ch.Operations().(*node); ok {
		old.mu.Lock()
		drop := un
		if old.un != un {
			drop, old.un = old.un, un
		}
		// A LOOKUP that raced the node's FORGET revives it: go-fuse
		// handed it out, so the kernel may name it again.
		old.forgotten = false
		old.mu.Unlock()
		if drop != nil {
			drop.Release()
		}
		old.t.h.used(old)
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
	a, err := un.Attr()
	if err != nil {
		return errnoOf(err)
	}
	fillAttr(&out.Attr, &a)
	out.SetTimeout(CacheTTL)
	return 0
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	un, errno := n.pin()
	if errno != 0 {
		return nil, errno
	}
	c, err := un.Lookup(name)
	un.Release()
	if err != nil {
		return nil, errnoOf(err)
	}
	return adopt(ctx, n, c, out)
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	un, errno := n.pin()
	if errno != 0 {
		return errno
	}
	defer un.Release()
	return getattr(un, out)
}

// Setattr applies the kernel's change: size, owner, mode, times (the
// union applies them in that order).
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	un, errno := n.pin()
	if errno != 0 {
		return errno
	}
	defer un.Release()
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
	n.t.squash.SetAttr(&sa)
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
	un, errno := n.pin()
	if errno != 0 {
		return nil, errno
	}
	defer un.Release()
	t, err := un.Readlink()
	if err != nil {
		return nil, errnoOf(err)
	}
	return []byte(t), 0
}
