package layertool

import (
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Host access: every call is relative to a directory descriptor and one
// name, never following a symbolic link. Directory descriptors are
// O_RDONLY (not O_PATH) so that they can be listed and locked.

// openDirAt opens the directory name in dirfd without following a
// symbolic link (ENOTDIR or ELOOP when name is not a directory).
func openDirAt(dirfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOATIME, 0)
		if err == unix.EPERM {
			// O_NOATIME needs ownership of the directory.
			fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// openFileAt opens the regular file name in dirfd for reading.
func openFileAt(dirfd int, name string) (*os.File, error) {
	for {
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOATIME|unix.O_NONBLOCK, 0)
		if err == unix.EPERM {
			fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}

// openFileFd opens the regular file name in dirfd for reading, as a raw
// descriptor: os.File's poller registration costs two syscalls per file,
// which shows over many small files (and the call itself is raw: raw.go).
func openFileFd(dirfd int, name string) (int, error) {
	fd, err := rawOpenat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOATIME, 0)
	if err == unix.EPERM {
		// O_NOATIME needs ownership of the file.
		fd, err = rawOpenat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	return fd, err
}

func lstatAt(dirfd int, name string, st *unix.Stat_t) error {
	return unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
}

// readNames lists the directory dirfd, sorted by byte order, without "."
// and "..". It reads through a descriptor of its own, so the offset of
// dirfd is left alone.
func readNames(dirfd int) ([]string, error) {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), ".")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// procPath names the object behind fd; procAt the entry name in dirfd.
// Only the l* (no-follow) xattr calls are used on procAt paths.
func procPath(fd int) string               { return "/proc/self/fd/" + strconv.Itoa(fd) }
func procAt(dirfd int, name string) string { return procPath(dirfd) + "/" + name }

// listXattrs returns the names of the extended attributes of name in
// dirfd, sorted.
func listXattrs(dirfd int, name string) ([]string, error) {
	p := procAt(dirfd, name)
	return readXattrNames(func(buf []byte) (int, error) { return unix.Llistxattr(p, buf) })
}

// listXattrsFd is listXattrs for an object open at fd (not O_PATH).
func listXattrsFd(fd int) ([]string, error) {
	return readXattrNames(func(buf []byte) (int, error) { return unix.Flistxattr(fd, buf) })
}

// readXattrNames calls list with a buffer that grows until the names fit,
// and returns them sorted; none where the filesystem has no xattrs.
func readXattrNames(list func(buf []byte) (int, error)) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := list(buf)
		if err == unix.ERANGE {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var out []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				out = append(out, s)
			}
		}
		sort.Strings(out)
		return out, nil
	}
}

// getXattrFd reads one extended attribute of the object open at fd.
func getXattrFd(fd int, attr string) ([]byte, error) {
	return readXattr(func(buf []byte) (int, error) { return unix.Fgetxattr(fd, attr, buf) })
}

// getXattr reads one extended attribute of name in dirfd.
func getXattr(dirfd int, name, attr string) ([]byte, error) {
	p := procAt(dirfd, name)
	return readXattr(func(buf []byte) (int, error) { return unix.Lgetxattr(p, attr, buf) })
}

// readXattr calls get with a buffer that grows until the value fits (a
// nil buffer asks for the size).
func readXattr(get func(buf []byte) (int, error)) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := get(buf)
		if err == unix.ERANGE {
			sz, err2 := get(nil)
			if err2 != nil {
				return nil, err2
			}
			buf = make([]byte, sz+1)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func setXattr(dirfd int, name, attr string, v []byte) error {
	return unix.Lsetxattr(procAt(dirfd, name), attr, v, 0)
}

func removeXattr(dirfd int, name, attr string) error {
	return unix.Lremovexattr(procAt(dirfd, name), attr)
}

// removeAllAt removes name in dirfd and, for a directory, everything in
// it, without following symbolic links. ENOENT is not an error.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	sub, err := openDirAt(dirfd, name)
	if err != nil {
		if err == unix.EACCES {
			// A directory without permissions (overlayfs's work/work is
			// mode 0): make it listable, it is being removed anyway.
			if cerr := unix.Fchmodat(dirfd, name, 0o700, 0); cerr == nil {
				sub, err = openDirAt(dirfd, name)
			}
		}
		if err != nil {
			return err
		}
	}
	err = removeContents(sub)
	unix.Close(sub)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return err
	}
	return nil
}

// removeContents removes everything in the directory dirfd.
func removeContents(dirfd int) error {
	names, err := readNames(dirfd)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := removeAllAt(dirfd, n); err != nil {
			return err
		}
	}
	return nil
}

func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

func fileType(st *unix.Stat_t) uint32 { return st.Mode & unix.S_IFMT }
