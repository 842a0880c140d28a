package difftest

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// fsys is one file system under test: union (unionFS) or a kernel overlay
// mount (kernelFS). Paths are slash-separated and relative to the root,
// which is "". Both resolve a path one component at a time without
// following symbolic links, as a 9P client walks (a symbolic link or any
// other non-directory met on the way gives ENOTDIR), and act on the last
// component without following it. Errors are unix.Errno values; any other
// error from union is itself a finding.
type fsys interface {
	Lstat(p string) (fileInfo, error)
	ReadFile(p string) ([]byte, error)
	ReadDir(p string) ([]dirEntry, error) // "." and ".." included
	Readlink(p string) (string, error)
	ListXattr(p string) ([]string, error) // sorted
	GetXattr(p, name string) ([]byte, error)

	Create(p string, mode uint32) error // exclusive
	WriteAt(p string, off int64, data []byte) error
	Truncate(p string, size int64) error
	Unlink(p string) error
	Rmdir(p string) error
	Mkdir(p string, mode uint32) error
	Rename(oldp, newp string) error
	Symlink(target, p string) error
	Link(oldp, newp string) error
	Chmod(p string, mode uint32) error
	SetXattr(p, name string, value []byte, flags int) error
	RemoveXattr(p, name string) error
}

// fileInfo is what both file systems report of an object and what is
// compared; inode numbers, atime and ctime are not.
type fileInfo struct {
	Mode     uint32 // S_IFMT | 07777
	UID, GID uint32
	Size     int64
	Nlink    uint64
	Rdev     uint64
	Mtime    unix.Timespec
}

func (fi fileInfo) typ() uint32 { return fi.Mode & unix.S_IFMT }

// String renders the attributes that must agree. A directory's size and
// link count are left out: overlayfs reports the upper directory's size
// and 1 link for merged directories, neither of which a client relies on.
// The mtime is compared as "unchanged since the layers were made" or not.
func (fi fileInfo) String() string {
	s := fmt.Sprintf("mode=%07o uid=%d gid=%d", fi.Mode, fi.UID, fi.GID)
	if fi.typ() != unix.S_IFDIR {
		s += fmt.Sprintf(" size=%d nlink=%d", fi.Size, fi.Nlink)
	}
	if fi.typ() == unix.S_IFCHR || fi.typ() == unix.S_IFBLK {
		s += fmt.Sprintf(" rdev=%d", fi.Rdev)
	}
	if fi.Mtime.Nano() == fixedTime.UnixNano() {
		s += " mtime=layer"
	} else {
		s += " mtime=changed"
	}
	return s
}

// dirEntry is one name of a directory listing.
type dirEntry struct {
	Name string
	Type uint8 // DT_*
}

func renderDirents(ents []dirEntry) string {
	parts := make([]string, len(ents))
	for i, e := range ents {
		parts[i] = fmt.Sprintf("%s:%s", e.Name, dtName(e.Type))
	}
	return strings.Join(parts, " ")
}

func dtName(t uint8) string {
	switch t {
	case unix.DT_REG:
		return "f"
	case unix.DT_DIR:
		return "d"
	case unix.DT_LNK:
		return "l"
	case unix.DT_FIFO:
		return "p"
	case unix.DT_CHR:
		return "c"
	case unix.DT_BLK:
		return "b"
	case unix.DT_SOCK:
		return "s"
	case unix.DT_UNKNOWN:
		return "?"
	}
	return fmt.Sprintf("dt%d", t)
}

// renderErr renders an operation's outcome: "ok", an errno's name, or, for
// an error that is not an errno (which union must never return), a
// description that cannot equal the kernel's.
func renderErr(err error) string {
	if err == nil {
		return "ok"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		if errno == 0 {
			return fmt.Sprintf("errno 0 as an error (%v)", err)
		}
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
		return fmt.Sprintf("errno %d", int(errno))
	}
	return fmt.Sprintf("not an errno: %v", err)
}

// splitPath splits a relative path into its components ("" has none).
func splitPath(p string) []string {
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// splitLast splits a relative path into its directory and last component.
func splitLast(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}
