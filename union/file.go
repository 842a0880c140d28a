package union

import (
	"io"
	"sync"

	"golang.org/x/sys/unix"
)

// openFlagsPassed are the open flags a client's open is allowed to carry to
// the host. O_CREAT, O_EXCL and O_NOFOLLOW-style flags are the union's own
// business; O_DIRECT is dropped because the client's buffers reach us copied
// and unaligned (the guest's own page cache is what O_DIRECT bypasses).
const openFlagsPassed = unix.O_ACCMODE | unix.O_APPEND | unix.O_TRUNC |
	unix.O_NOATIME | unix.O_SYNC | unix.O_DSYNC | unix.O_NONBLOCK | unix.O_DIRECTORY

// Open opens n. Opening for writing (or with O_TRUNC) copies n up first; a
// directory opens read-only for ReadDir (EISDIR for writing). Symbolic links
// answer ELOOP, as open(2) does. Device nodes, FIFOs and sockets are never
// opened on the host (EINVAL): they are the client's to implement (Linux
// does so for 9p), and opening a host device on a client's behalf would
// hand it whatever the device number names on the host.
func (n *Node) Open(flags int) (*File, error) {
	acc := flags & unix.O_ACCMODE
	write := acc != unix.O_RDONLY || flags&unix.O_TRUNC != 0
	switch n.typ {
	case unix.S_IFDIR:
		if write {
			return nil, unix.EISDIR
		}
		return &File{node: n.Retain(), fd: -1, dir: &dirStream{}}, nil
	case unix.S_IFREG:
	case unix.S_IFLNK:
		return nil, unix.ELOOP
	default:
		return nil, unix.EINVAL
	}
	if flags&unix.O_DIRECTORY != 0 {
		return nil, unix.ENOTDIR
	}
	var obj int
	if write {
		copyUp := n.copyUpForWrite
		if flags&unix.O_TRUNC != 0 && acc != unix.O_RDONLY {
			copyUp = n.copyUpEmpty // the data would be thrown away at once
		}
		fd, err := copyUp()
		if err != nil {
			return nil, err
		}
		obj = fd
	} else {
		n.stillMetacopy()
		obj = n.dataFd()
	}
	hostFlags := flags & openFlagsPassed
	if !write && obj != n.upperFd() {
		// Reading a lower file must not write to it either, not even its
		// access time (where the server may ask so).
		hostFlags |= unix.O_NOATIME
	}
	var fd int
	var err error
	if write && hostFlags&unix.O_TRUNC != 0 {
		// Truncating an upper file frees its data (quota.go).
		err = n.u.resize(obj, func(int64) int64 { return 0 }, func() error {
			fd, err = reopen(obj, hostFlags)
			return err
		})
	} else {
		fd, err = reopen(obj, hostFlags)
	}
	if err == unix.EPERM && hostFlags&unix.O_NOATIME != 0 {
		// O_NOATIME is only for the owner (or CAP_FOWNER): it is a hint.
		hostFlags &^= unix.O_NOATIME
		fd, err = reopen(obj, hostFlags)
	}
	if err != nil {
		return nil, err
	}
	return &File{node: n.Retain(), fd: fd, flags: hostFlags}, nil
}

// ReadAt reads at off; it returns io.EOF at the end of the file.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if f.fd < 0 {
		return 0, unix.EISDIR
	}
	for {
		n, err := unix.Pread(f.fd, p, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 && len(p) > 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

// WriteAt writes at off (at the end for a file opened with O_APPEND).
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if f.fd < 0 {
		return 0, unix.EISDIR
	}
	if f.flags&unix.O_ACCMODE == unix.O_RDONLY {
		return 0, unix.EBADF
	}
	if u := f.node.u; u.quota.q != nil {
		return u.writeCounted(f.fd, p, off, f.flags&unix.O_APPEND != 0)
	}
	return pwriteAll(f.fd, p, off)
}

// Sync flushes the file's data and metadata to the upper layer.
func (f *File) Sync() error {
	if f.fd < 0 {
		return nil
	}
	return unix.Fsync(f.fd)
}

// Fd returns the host descriptor (-1 for directories), for record locks.
// It stays valid until Close.
func (f *File) Fd() int { return f.fd }

// Close closes the file.
func (f *File) Close() error {
	var err error
	if f.fd >= 0 {
		err = unix.Close(f.fd)
		f.fd = -1
	}
	if f.node != nil {
		f.node.Release()
		f.node = nil
	}
	return err
}

// dirStream is the listing of an open directory. It is taken when the
// directory is read from cookie 0 and kept until the next read from 0, so
// that cookies the client got earlier stay meaningful while others change
// the directory.
type dirStream struct {
	mu      sync.Mutex
	entries []Dirent
	valid   bool
}
