package whiteout

import (
	"golang.org/x/sys/unix"
)

// Metadata-only copies: overlayfs with metacopy=on copies only the
// metadata of a lower regular file whose owner, mode, times or xattrs
// change. The upper file has the lower's size but no data and carries the
// xattr "metacopy"; its data is read from the lower file found by its name
// (or its redirect, once renamed or linked) until the first open for
// writing or truncate copies the data in and removes the marker.
//
// The marker's value is empty (what the kernel writes without fs-verity),
// or a struct ovl_metacopy of at least 4 bytes: version 0, then its own
// length. Anything else is invalid (EIO), as ovl_check_metacopy_xattr
// answers.

const metacopyName = "metacopy"

// metacopyMinSize is the size of struct ovl_metacopy without a digest.
const metacopyMinSize = 4

// IsMetacopy reports whether the regular file open at fd (any kind of
// descriptor) is a metadata-only copy in namespace ns; EIO for an invalid
// marker.
func IsMetacopy(fd int, ns Namespace) (bool, error) {
	v, err := getFd(fd, string(ns)+metacopyName)
	switch err {
	case nil:
	case unix.ENODATA, unix.ENOTSUP:
		return false, nil
	default:
		return false, err
	}
	if len(v) == 0 {
		return true, nil
	}
	if len(v) < metacopyMinSize || v[0] != 0 || int(v[1]) != len(v) {
		return false, unix.EIO
	}
	return true, nil
}

// SetMetacopy marks the regular file at fd (any kind of descriptor) as a
// metadata-only copy, with the value the kernel writes. An open descriptor
// takes the marker directly; an O_PATH one (EBADF) through /proc, which
// costs a path walk.
func SetMetacopy(fd int, ns Namespace) error {
	err := unix.Fsetxattr(fd, string(ns)+metacopyName, []byte{}, 0)
	if err == unix.EBADF {
		err = setFd(fd, string(ns)+metacopyName, []byte{})
	}
	return err
}

// ClearMetacopy removes the marker from the file open at fd, once its data
// is in place.
func ClearMetacopy(fd int, ns Namespace) error {
	err := unix.Removexattr(procPath(fd), string(ns)+metacopyName)
	if err == unix.ENODATA {
		return nil
	}
	return err
}
