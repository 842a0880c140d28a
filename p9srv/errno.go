package p9srv

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Errors leave as Linux errno values: the union's errno where it gave one
// (its errors wrap unix.Errno), EIO for anything without one.
const (
	errnoEIO    = unix.EIO
	errnoEINVAL = unix.EINVAL
	errnoENOSYS = unix.ENOSYS
)

// errnoOf returns the errno a client gets for err.
func errnoOf(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) && e != 0 {
		return e
	}
	return unix.EIO
}

// isResourceErrno reports host errors that mean "out of descriptors or
// memory": the request fails with them, the server goes on, and the log
// says so once in a while.
func isResourceErrno(e unix.Errno) bool {
	return e == unix.EMFILE || e == unix.ENFILE || e == unix.ENOMEM
}
