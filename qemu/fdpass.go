package qemu

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Passing connections to a running server.
//
// QEMU's user network can run a command for each TCP connection a guest
// opens to a guestfwd address (guestfwd=tcp:ADDR:PORT-cmd:COMMAND): the
// command gets the connection as its stdin and stdout. Serving 9P in
// that command would start one server per connection over the same
// upper, which is unsafe (each would clean the work directory and take
// its own union lock). Instead the command is a courier: it connects to
// the server's pass socket, hands over its stdin with SCM_RIGHTS
// ([PassFD]) and exits, and the one server for the union serves the
// guest's connection directly ([ListenPassed]). No process relays bytes,
// each guest connection is a connection of its own to the server (a
// guest that sends garbage or disconnects loses only that connection),
// and a server restarted on the same path serves the next connection.

// passTimeout bounds how long a courier may take to hand over its
// descriptor once connected; one that stalls is dropped, so it cannot
// hold up the connections behind it.
const passTimeout = 5 * time.Second

// PassFD connects to the pass socket at path and sends fd over it with
// SCM_RIGHTS, with one byte of data ("p"). It returns once the receiver
// has taken it (the receiver closes the connection).
func PassFD(path string, fd int) error {
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("pass to %s: %w", path, err)
	}
	defer unix.Close(s)
	if err := unix.Connect(s, &unix.SockaddrUnix{Name: path}); err != nil {
		return fmt.Errorf("pass to %s: connect: %w", path, err)
	}
	if err := unix.Sendmsg(s, []byte("p"), unix.UnixRights(fd), nil, 0); err != nil {
		return fmt.Errorf("pass to %s: sendmsg: %w", path, err)
	}
	// Wait for the receiver to close: the descriptor is then in its
	// table, and our copy may go.
	var b [1]byte
	_ = unix.SetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: int64(passTimeout / time.Second)})
	_, _ = unix.Read(s, b[:])
	return nil
}

// PassListener accepts connections handed over on a unix socket by
// [PassFD]. It implements net.Listener: Accept returns the passed
// connection (any stream socket: a TCP socket from QEMU's user network,
// a socketpair end), not the courier's. Each courier is read in a
// goroutine of its own, so one that stalls holds up no other. Safe for
// concurrent use.
type PassListener struct {
	ln    *net.UnixListener
	path  string
	conns chan net.Conn
	done  chan struct{} // closed when the accept loop has ended
	err   error         // why it ended; read after done
}

var _ net.Listener = (*PassListener)(nil)

// ListenPassed listens on the unix socket path (mode 0600, since whoever
// can connect can hand the server a connection) for couriers. A stale
// socket file is replaced.
func ListenPassed(path string) (*PassListener, error) {
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen passfd:%s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen passfd:%s: %w", path, err)
	}
	l := &PassListener{ln: ln, path: path, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.loop()
	return l, nil
}

// loop accepts couriers until the socket is closed. A courier that sends
// no descriptor, something that is not a stream socket, or nothing
// within passTimeout is dropped: a bad courier never ends the listener.
func (l *PassListener) loop() {
	defer close(l.done)
	for {
		c, err := l.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				l.err = err
				return
			}
			// Out of descriptors and the like: wait, do not spin.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		go func() {
			conn, err := receiveConn(c)
			c.Close() // tells the courier it may exit
			if err != nil {
				return
			}
			select {
			case l.conns <- conn:
			case <-l.done:
				conn.Close()
			}
		}()
	}
}

// Accept waits for the next passed connection.
func (l *PassListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}

// receiveConn reads one SCM_RIGHTS message from a courier and returns
// the first passed descriptor as a net.Conn; any other passed
// descriptors are closed.
func receiveConn(c *net.UnixConn) (net.Conn, error) {
	_ = c.SetReadDeadline(time.Now().Add(passTimeout))
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4*4)) // room for a few fds, all closed but the first
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	return connFromRights(oob[:oobn])
}

// streamConn makes a net.Conn of a received descriptor, which must be a
// stream socket (it is closed otherwise).
func streamConn(fd int) (net.Conn, error) {
	unix.CloseOnExec(fd)
	if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_STREAM {
		unix.Close(fd)
		return nil, errors.New("passed descriptor is not a stream socket")
	}
	f := os.NewFile(uintptr(fd), "passed")
	defer f.Close() // FileConn dups it
	conn, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		// Requests are small and latency-bound; the kernel client sets
		// no delay either.
		_ = tc.SetNoDelay(true)
		return withQuickAck(tc), nil
	}
	return conn, nil
}

// Close stops listening and removes the socket file.
func (l *PassListener) Close() error { return l.ln.Close() }

// Addr is the pass socket's address.
func (l *PassListener) Addr() net.Addr { return passAddr(l.path) }

type passAddr string

func (a passAddr) Network() string { return "passfd" }
func (a passAddr) String() string  { return "passfd:" + string(a) }
