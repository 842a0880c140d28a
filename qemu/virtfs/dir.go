package virtfs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// dirBatch is how many entries one ReadDir of the union asks for.
const dirBatch = 256

// dir is an open directory: the union's listing read in batches. Its
// offsets are the union's cookies, so that a seekdir to one the kernel
// (QEMU's telldir) got earlier lands after that entry. go-fuse
// serializes the calls on one handle.
type dir struct {
	n      *node // whose open this is (node.opened); told when it closes
	f      *union.File
	shared bool           // f is the node's shared listing: not closed here
	cookie uint64         // where the next batch starts
	buf    []union.Dirent // entries read and not handed out yet
	done   bool
}

var (
	_ fs.FileReaddirenter = (*dir)(nil)
	_ fs.FileSeekdirer    = (*dir)(nil)
	_ fs.FileReleasedirer = (*dir)(nil)
	_ fs.FileFsyncdirer   = (*dir)(nil)
)

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	un, errno := n.pin()
	if errno != 0 {
		return nil, 0, errno
	}
	defer un.Release()
	n.opened(un) // the shared listing too: not closed while in use
	if flags&sharedListing != 0 {
		f, err := n.sharedListing(un)
		if err != nil {
			n.closed()
			return nil, 0, errnoOf(err)
		}
		return &dir{n: n, f: f, shared: true}, 0, 0
	}
	f, err := un.Open(unix.O_RDONLY | unix.O_DIRECTORY)
	if err != nil {
		n.closed()
		return nil, 0, errnoOf(err)
	}
	return &dir{n: n, f: f}, 0, 0
}

// sharedListing returns the directory's listing for handle-less reads
// (noOpendir), opening it on first use; it is closed when the kernel
// forgets the node, or when the node lets go of its union.Node (hold.go:
// never while a handle uses it). A listing taken again after that answers
// later offsets from the directory as it is then: the same entries if it
// did not change (offsets are positions in the listing, package union).
func (n *node) sharedListing(un *union.Node) (*union.File, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.shared == nil {
		f, err := un.Open(unix.O_RDONLY | unix.O_DIRECTORY)
		if err != nil {
			return nil, err
		}
		n.shared = f
	}
	return n.shared, nil
}

func (d *dir) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if len(d.buf) == 0 {
		if d.done {
			return nil, 0
		}
		ents, err := d.f.ReadDir(d.cookie, dirBatch)
		if err != nil {
			return nil, errnoOf(err)
		}
		if len(ents) == 0 {
			d.done = true
			return nil, 0
		}
		d.buf = ents
	}
	e := d.buf[0]
	d.buf = d.buf[1:]
	d.cookie = e.Cookie
	return &fuse.DirEntry{Name: e.Name, Ino: e.ID, Mode: uint32(e.Type) << 12, Off: e.Cookie}, 0
}

// Seekdir continues after the entry whose cookie is off (0: from the
// start, with a fresh listing).
func (d *dir) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	d.cookie, d.buf, d.done = off, nil, false
	return 0
}

func (d *dir) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno { return 0 }

func (d *dir) Releasedir(ctx context.Context, flags uint32) {
	if !d.shared {
		d.f.Close()
	}
	d.n.closed()
}
