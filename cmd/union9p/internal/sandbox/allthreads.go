package sandbox

import (
	"errors"
	"syscall"
)

// errNoAllThreads: the binary was built with cgo, where Go cannot make a
// system call on every thread.
var errNoAllThreads = errors.New("binary built with cgo: cannot apply on every thread (build with CGO_ENABLED=0)")

// allThreads makes one system call on every thread of the process, with
// the same arguments, for the per-thread settings (capabilities, Landlock
// without TSYNC). ENOTSUP means cgo is in use.
func allThreads(trap, a1, a2, a3 uintptr) (uintptr, uintptr, syscall.Errno) {
	return syscall.AllThreadsSyscall(trap, a1, a2, a3)
}
