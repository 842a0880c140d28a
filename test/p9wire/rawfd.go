package p9wire

import (
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// rawSocket is a connection's socket served with blocking read(2),
// write(2) and writev(2) on a descriptor of its own, outside Go's network
// poller.
//
// Why: a client that waits on each answer, as the kernel's does, should
// cost a benchmark two system calls per request (send, receive). Through
// the poller a response costs a failed read, parking the goroutine,
// epoll_pwait and a thread wake-up; on a virtual machine where every
// kernel entry is dear that made the client dearer than the server it
// measured, so the figures showed the client more than the server.
//
// The wrapped connection is closed at once (that takes its descriptor out
// of the poller); the socket lives on in fd, set blocking (no one else
// shares its open file description any more), until Close. Close shuts
// the socket down, which ends a blocked read or write, then closes fd once
// no call uses it.
//
// Read is called by one goroutine at a time (the client's reading
// waiter), Write and writev by one at a time (under Client.writeMu); the
// two may overlap.
type rawSocket struct {
	fd     int
	mu     sync.RWMutex // held for reading by every call that uses fd; Close takes it to close fd
	closed bool         // under mu
	once   sync.Once
}

// newRawSocket takes over conn's socket when conn is a socket; otherwise
// it returns nil and conn is left as it is.
func newRawSocket(conn io.ReadWriteCloser) *rawSocket {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	fd := -1
	if err := rc.Control(func(ofd uintptr) {
		if _, err := unix.GetsockoptInt(int(ofd), unix.SOL_SOCKET, unix.SO_TYPE); err != nil {
			return
		}
		if nfd, err := unix.FcntlInt(ofd, unix.F_DUPFD_CLOEXEC, 0); err == nil {
			fd = nfd
		}
	}); err != nil || fd < 0 {
		return nil
	}
	conn.Close() // out of the poller; the socket stays open through fd
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil
	}
	return &rawSocket{fd: fd}
}

func (s *rawSocket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, net.ErrClosed
	}
	for {
		n, err := unix.Read(s.fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, sockErr("read", err)
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (s *rawSocket) Write(p []byte) (int, error) {
	return s.writev([][]byte{p})
}

// writev writes all of bufs, with one writev(2) unless the socket takes
// less at once.
func (s *rawSocket) writev(bufs [][]byte) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, net.ErrClosed
	}
	done := 0
	for len(bufs) > 0 {
		var n int
		var err error
		if len(bufs) == 1 {
			n, err = unix.Write(s.fd, bufs[0])
		} else {
			n, err = unix.Writev(s.fd, bufs)
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, sockErr("write", err)
		}
		done += n
		for len(bufs) > 0 && n >= len(bufs[0]) {
			n -= len(bufs[0])
			bufs = bufs[1:]
		}
		if len(bufs) > 0 {
			bufs[0] = bufs[0][n:]
		}
	}
	return done, nil
}

// sockErr describes a failed socket call. A peer that hung up reads as
// net.ErrClosed; other errors are described but not wrapped, so that a
// caller looking for a unix.Errno finds only the server's answers (an
// Rlerror), never the transport's.
func sockErr(op string, err error) error {
	if err == unix.EPIPE || err == unix.ECONNRESET {
		return net.ErrClosed
	}
	return fmt.Errorf("p9wire: %s 9p socket: %v", op, err)
}

// Close shuts the socket down, which ends a blocked read or write, and
// closes the descriptor once no call uses it.
func (s *rawSocket) Close() error {
	s.once.Do(func() {
		unix.Shutdown(s.fd, unix.SHUT_RDWR)
		s.mu.Lock()
		s.closed = true
		unix.Close(s.fd)
		s.mu.Unlock()
	})
	return nil
}
