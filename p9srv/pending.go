package p9srv

import (
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// pendingFunc returns a function that reports whether the client has sent
// bytes the server has not read yet, for the watchdog: a reader stuck in
// a long request need not be replaced while nothing else waits (a client
// that waits on each answer), which saves starting a goroutine and waking
// a thread per long request. Where the connection has no descriptor (a
// net.Pipe) or the descriptor cannot tell (no FIONREAD, which Linux
// spells TIOCINQ and SIOCINQ), it
// reports true: the reader is then replaced as soon as the request is
// slow.
func pendingFunc(rw io.ReadWriteCloser) func() bool {
	if f, ok := rw.(*fdConn); ok {
		return f.pending
	}
	sc, ok := rw.(syscall.Conn)
	if !ok {
		return func() bool { return true }
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return func() bool { return true }
	}
	return func() bool {
		n, ierr := 0, error(nil)
		if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); err != nil {
			return true
		}
		return ierr != nil || n > 0
	}
}
