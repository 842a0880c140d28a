package union

import (
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// lowerLayer is a read-only layer. It deliberately offers only operations
// that read: the union's promise is that lower layers are never written,
// and code that holds a lowerLayer has no way to break it.
type lowerLayer struct {
	fd  int // O_PATH directory descriptor of the layer root
	idx int // 1 for the topmost lower
}

// upperLayer is the writable layer.
type upperLayer struct {
	fd int // O_PATH directory descriptor of the layer root
}

func openLowerLayer(path string, idx int) (*lowerLayer, error) {
	fd, err := openRoot(path)
	if err != nil {
		return nil, err
	}
	return &lowerLayer{fd: fd, idx: idx}, nil
}

func openUpperLayer(path string) (*upperLayer, error) {
	fd, err := openRoot(path)
	if err != nil {
		return nil, err
	}
	return &upperLayer{fd: fd}, nil
}

func openRoot(path string) (int, error) {
	return unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// openPathAt opens name in dirfd as an O_PATH descriptor without following
// a symbolic link.
func openPathAt(dirfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// lstatAt stats name in dirfd without following a symbolic link.
func lstatAt(dirfd int, name string, st *unix.Stat_t) error {
	return unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
}

// fstat stats the object behind any descriptor, O_PATH included.
func fstat(fd int, st *unix.Stat_t) error {
	return unix.Fstatat(fd, "", st, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
}

// procPath names the object behind fd for the calls that have no
// descriptor-relative form usable with O_PATH (xattrs, truncate, chmod).
// The kernel resolves it to the very object the descriptor holds, not to a
// path that could have been swapped since.
func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// procPathAt names the entry name of the directory dirfd; the last
// component is looked up afresh, so callers use it only with the l*
// (no-follow) calls.
func procPathAt(dirfd int, name string) string { return procPath(dirfd) + "/" + name }

// reopen opens the object behind the O_PATH descriptor fd with flags, as
// the same object (never a path that could have been swapped since).
func reopen(fd int, flags int) (int, error) {
	for {
		nfd, err := unix.Open(procPath(fd), flags|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err == unix.EINTR {
			continue
		}
		return nfd, err
	}
}

// removeAllAt removes everything inside the directory dirfd (not dirfd
// itself), without following symbolic links. It is used on the work
// directory and on directories of whiteouts only.
func removeAllAt(dirfd int) error {
	names, err := readNames(dirfd)
	if err != nil {
		return err
	}
	for _, name := range names {
		err := unix.Unlinkat(dirfd, name, 0)
		if err == unix.EISDIR || err == unix.EPERM {
			sub, oerr := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if oerr != nil {
				return oerr
			}
			err = removeAllAt(sub)
			unix.Close(sub)
			if err != nil {
				return err
			}
			err = unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
		}
		if err != nil && err != unix.ENOENT {
			return err
		}
	}
	return nil
}

// readNames lists the names in the directory behind dirfd (any descriptor
// kind), without "." and "..".
func readNames(dirfd int) ([]string, error) {
	ents, err := readDirents(dirfd)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.name)
	}
	return names, nil
}

// hostDirent is one entry of a host directory.
type hostDirent struct {
	name string
	ino  uint64
	typ  uint8 // DT_*
}

// readDirents reads all entries of the directory behind dirfd, without "."
// and "..". It opens its own descriptor, so dirfd may be O_PATH.
func readDirents(dirfd int) ([]hostDirent, error) {
	// O_NOATIME: listing a lower directory must not write its atime.
	fd, err := reopen(dirfd, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOATIME)
	if err == unix.EPERM {
		fd, err = reopen(dirfd, unix.O_RDONLY|unix.O_DIRECTORY)
	}
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var out []hostDirent
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	buf := *bp
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return out, nil
		}
		out = parseDirents(buf[:n], out)
	}
}

var direntBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// parseDirents appends the entries of a getdents64 buffer to out. The names
// share one string per buffer: one allocation instead of one per name.
func parseDirents(raw []byte, out []hostDirent) []hostDirent {
	all := string(raw)
	b := all
	for len(b) >= 19 {
		ino := le64(b[0:8])
		reclen := int(b[16]) | int(b[17])<<8
		if reclen <= 19 || reclen > len(b) {
			break
		}
		typ := b[18]
		name := b[19:reclen]
		if i := strings.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		b = b[reclen:]
		if name == "." || name == ".." {
			continue
		}
		out = append(out, hostDirent{name: name, ino: ino, typ: typ})
	}
	return out
}

func le64(b string) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}
