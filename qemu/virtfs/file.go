package virtfs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// file is an open regular file. go-fuse calls its methods concurrently;
// union.File's are safe for that.
type file struct {
	f    *union.File
	node *node // whose open this is (node.opened); told when it closes
	// n is set when the open is direct-io: its writes bypass the guest's
	// page cache, and mark n so that the next open drops it (directio.go).
	n *node
}

// newFile is the handle of an open of n, which the caller recorded with
// n.opened; direct is openFlags' answer.
func newFile(f *union.File, n *node, direct bool) *file {
	if direct {
		return &file{f: f, node: n, n: n}
	}
	return &file{f: f, node: n}
}

var (
	_ fs.FileReader   = (*file)(nil)
	_ fs.FileWriter   = (*file)(nil)
	_ fs.FileFsyncer  = (*file)(nil)
	_ fs.FileReleaser = (*file)(nil)
	_ fs.FileFlusher  = (*file)(nil)
)

// Open opens a regular file. The page cache is kept across opens (only
// this mount changes the file: package comment) unless a direct-io open
// wrote it since (directio.go).
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	un, errno := n.pin()
	if errno != 0 {
		return nil, 0, errno
	}
	defer un.Release()
	n.opened(un)
	f, err := un.Open(int(flags) &^ (unix.O_CREAT | unix.O_EXCL | unix.O_NOCTTY))
	if err != nil {
		n.closed()
		return nil, 0, errnoOf(err)
	}
	fopen, direct := n.openFlags(flags)
	return newFile(f, n, direct), fopen, 0
}

// Read hands the kernel the host descriptor and offset: go-fuse splices
// the data from the host file into the FUSE device where it can, so the
// bytes are not copied through this process.
func (h *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	fd := h.f.Fd()
	if fd < 0 {
		return nil, syscall.EISDIR
	}
	return fuse.ReadResultFd(uintptr(fd), off, len(dest)), 0
}

func (h *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, err := h.f.WriteAt(data, off)
	if h.n != nil && n > 0 {
		h.n.wroteDirect()
	}
	if err != nil && n == 0 {
		return 0, errnoOf(err)
	}
	return uint32(n), 0
}

func (h *file) Fsync(ctx context.Context, flags uint32) syscall.Errno { return errnoOf(h.f.Sync()) }

// Flush (close(2) of one descriptor) has nothing to do: writes are not
// buffered here.
func (h *file) Flush(ctx context.Context) syscall.Errno { return 0 }

func (h *file) Release(ctx context.Context) syscall.Errno {
	err := h.f.Close()
	h.node.closed()
	return errnoOf(err)
}
