package tenant

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// removeAllAt removes the entry name of the directory dirfd and, if it is a
// directory, everything below it, through walk: a symbolic link met
// anywhere (name included) is removed as a link and never followed, a mount
// point is never entered (the removal stops with errMountPoint and leaves
// it), and a directory moved away under the walk stops it with errChanged.
// Nothing outside the tree that name was when each step looked is touched.
func removeAllAt(dirfd int, name string) error {
	for range 8 {
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err == unix.ENOENT {
				return nil
			}
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err := unix.Unlinkat(dirfd, name, 0); err != nil && err != unix.ENOENT && err != unix.EISDIR {
				return fmt.Errorf("remove %q: %w", name, err)
			}
			continue // EISDIR: it became a directory; look again
		}
		fd, err := openDirAt(dirfd, name)
		switch err {
		case nil:
		case unix.ENOENT:
			return nil
		case unix.ELOOP, unix.ENOTDIR:
			continue // swapped for a link or a file: look again
		case unix.EXDEV:
			return fmt.Errorf("%q: %w", name, errMountPoint)
		default:
			return fmt.Errorf("open %q: %w", name, err)
		}
		err = emptyDir(fd)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("%q: %w", name, err)
		}
		if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil {
			if err == unix.ENOENT {
				return nil
			}
			if err == unix.ENOTEMPTY || err == unix.ENOTDIR {
				continue // something was added or swapped in meanwhile
			}
			return fmt.Errorf("remove %q: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("%q: %w", name, errChanged)
}

// emptyDir removes everything below the directory fd, leaving it empty.
func emptyDir(fd int) error { return walk(fd, removeVisitor()) }

// removeVisitor unlinks every entry, directories on the way back up.
func removeVisitor() walkVisitor {
	return walkVisitor{
		visit: func(dirfd int, name string, st *unix.Stat_t) (bool, error) {
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				return true, nil
			}
			if err := unix.Unlinkat(dirfd, name, 0); err != nil && err != unix.ENOENT {
				if err == unix.EISDIR {
					// Became a directory since the lstat: removeAllAt
					// looks again and handles it from here.
					return false, removeAllAt(dirfd, name)
				}
				return false, fmt.Errorf("remove %q: %w", name, err)
			}
			return false, nil
		},
		leave: func(dirfd int, name string) error {
			err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
			if err == unix.ENOTEMPTY || err == unix.ENOTDIR {
				// Refilled or swapped meanwhile: finish it the slow way.
				return removeAllAt(dirfd, name)
			}
			if err != nil && err != unix.ENOENT {
				return fmt.Errorf("remove %q: %w", name, err)
			}
			return nil
		},
	}
}
