package virtfs

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// errnoOf is the errno the kernel passes on for err: the union's errors
// carry one (package union); anything else is EIO.
func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return syscall.Errno(e)
	}
	return syscall.EIO
}
