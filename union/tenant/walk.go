package tenant

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// This file holds the one way the package goes through a tenant's tree:
// descriptor-relative, one name at a time, never following a symbolic link
// and never crossing a mount point, whatever is swapped underneath while it
// runs. Measure (count.go) and removeAllAt (remove.go) are built on it.

// errChanged reports that the tree moved under a walk in a way it cannot
// follow safely (a directory's ".." is no longer the directory it came
// from). The walk stops; nothing outside what it had reached was touched.
var errChanged = errors.New("directory tree changed during the walk")

// errMountPoint reports a mount point met below a walk's root.
var errMountPoint = errors.New("mount point inside a tenant directory")

// resolveChild are the openat2 rules for every descent: the name must be a
// plain entry of the directory, not a symbolic link, and must not lead into
// another mount (bind mounts of the same filesystem included).
const resolveChild = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// openDirAt opens the directory name in dirfd for reading under
// resolveChild. A name that is a symbolic link answers ELOOP, a
// non-directory ENOTDIR, a mount point EXDEV.
func openDirAt(dirfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, name, &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
			Resolve: resolveChild,
		})
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// openParent opens ".." of dirfd, refusing to leave the mount.
func openParent(dirfd int) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, "..", &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		})
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// readNames lists the directory open as fd (without "." and ".."). The fd
// must be freshly opened: the listing starts at its current offset.
func readNames(fd int) ([]string, error) { return readNamesBuf(fd, make([]byte, 32<<10)) }

// readNamesBuf is readNames with the caller's buffer for getdents.
func readNamesBuf(fd int, buf []byte) ([]string, error) {
	var names []string
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// walkVisitor is what a walk does with each object below its root.
type walkVisitor struct {
	// visit is called for every entry of every directory reached, with
	// dirfd the directory and st the entry's lstat. It returns whether to
	// descend (only meaningful for directories).
	visit func(dirfd int, name string, st *unix.Stat_t) (descend bool, err error)
	// leave is called after all of a directory's entries were visited,
	// with dirfd its parent; may be nil.
	leave func(dirfd int, name string) error
	// mountPoint is called for a directory that is a mount point (never
	// descended); nil makes a mount point an error.
	mountPoint func(dirfd int, name string) error
	// beforeOpen, when set, runs between an entry's lstat and the descent
	// into it: the window a swap would use. Tests set it to make the swap
	// happen there; nil otherwise.
	beforeOpen func(dirfd int, name string)
}

// frame is one directory of the path from the walk's root to where it is.
type frame struct {
	name  string   // entry name in the parent ("" for the root)
	names []string // its entries, read when it was entered
	next  int      // index in names of the next entry to visit
	dev   uint64
	ino   uint64
}

// walk visits everything below the directory root (root itself is not
// visited). It holds one directory descriptor at a time, besides root,
// whatever the depth: a guest can make trees far deeper than the
// descriptor limit. It goes back up through "..", checking that it arrives
// in the directory it came from (same device and inode) and stopping with
// errChanged otherwise. Entries that vanish while it runs are skipped; an
// entry that stops being a directory between its lstat and the descent is
// visited again as what it now is.
func walk(root int, v walkVisitor) error {
	cur, err := openDirAt(root, ".")
	if err != nil {
		return err
	}
	defer func() { unix.Close(cur) }()
	var st unix.Stat_t
	if err := unix.Fstat(cur, &st); err != nil {
		return err
	}
	buf := make([]byte, 32<<10)
	names, err := readNamesBuf(cur, buf)
	if err != nil {
		return err
	}
	stack := []frame{{names: names, dev: st.Dev, ino: st.Ino}}
	for {
		top := &stack[len(stack)-1]
		if top.next == len(top.names) {
			if len(stack) == 1 {
				return nil
			}
			parent := stack[len(stack)-2]
			pfd, err := openParent(cur)
			if err != nil {
				return fmt.Errorf("back up from %q: %w", top.name, err)
			}
			if err := unix.Fstat(pfd, &st); err != nil || st.Dev != parent.dev || st.Ino != parent.ino {
				unix.Close(pfd)
				return fmt.Errorf("back up from %q: %w", top.name, errChanged)
			}
			unix.Close(cur)
			cur = pfd
			name := top.name
			stack = stack[:len(stack)-1]
			if v.leave != nil {
				if err := v.leave(cur, name); err != nil {
					return err
				}
			}
			continue
		}
		name := top.names[top.next]
		top.next++
		fd, entered, err := visitEntry(cur, name, v)
		if err != nil {
			return err
		}
		if !entered {
			continue
		}
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return err
		}
		names, err := readNamesBuf(fd, buf)
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("list %q: %w", name, err)
		}
		unix.Close(cur)
		cur = fd
		stack = append(stack, frame{name: name, names: names, dev: st.Dev, ino: st.Ino})
	}
}

// visitEntry visits name in dirfd and, if it is a directory to descend
// into, opens it. It retries when the entry changes kind under it.
func visitEntry(dirfd int, name string, v walkVisitor) (fd int, entered bool, err error) {
	for range 8 {
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err == unix.ENOENT {
				return -1, false, nil // gone meanwhile
			}
			return -1, false, fmt.Errorf("stat %q: %w", name, err)
		}
		descend, err := v.visit(dirfd, name, &st)
		if err != nil || !descend || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return -1, false, err
		}
		if v.beforeOpen != nil {
			v.beforeOpen(dirfd, name)
		}
		fd, err := openDirAt(dirfd, name)
		switch err {
		case nil:
			var now unix.Stat_t
			if err := unix.Fstat(fd, &now); err != nil {
				unix.Close(fd)
				return -1, false, err
			}
			if now.Ino == st.Ino && now.Dev == st.Dev {
				return fd, true, nil
			}
			unix.Close(fd) // replaced by another directory: look again
		case unix.ENOENT:
			return -1, false, nil
		case unix.ELOOP, unix.ENOTDIR:
			// Replaced by a symbolic link or a file: look again.
		case unix.EXDEV:
			if v.mountPoint == nil {
				return -1, false, fmt.Errorf("%q: %w", name, errMountPoint)
			}
			return -1, false, v.mountPoint(dirfd, name)
		default:
			return -1, false, fmt.Errorf("open %q: %w", name, err)
		}
	}
	return -1, false, fmt.Errorf("%q: %w", name, errChanged)
}
