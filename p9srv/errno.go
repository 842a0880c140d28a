package p9srv

import (
	"errors"
	"io"

	"github.com/hugelgupf/p9/linux"
	"golang.org/x/sys/unix"
)

// errno converts an error from package union into what the p9 library
// sends unchanged: a linux.Errno. The library would remap a wrapped
// syscall.Errno (EPERM becomes EACCES, ENOTEMPTY becomes EEXIST), so every
// error leaving a File goes through here. io.EOF passes through for reads;
// anything without an errno becomes EIO.
func errno(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var le linux.Errno
	if errors.As(err, &le) {
		return le
	}
	var ue unix.Errno
	if errors.As(err, &ue) {
		return linux.Errno(ue)
	}
	return linux.EIO
}

// errnoValue is errno for callers that need the number.
func errnoValue(err error) linux.Errno {
	if e, ok := errno(err).(linux.Errno); ok {
		return e
	}
	return linux.EIO
}
