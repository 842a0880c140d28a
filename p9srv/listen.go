package p9srv

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Listen opens a listening socket for spec:
//
//	unix:PATH       a unix stream socket (a stale socket file is replaced)
//	tcp:HOST:PORT   a TCP socket
//	vsock:PORT      an AF_VSOCK socket on any CID (needs vsock on the host)
//	fd:N            an inherited listening socket on descriptor N
//
// "stdio" is not a listener: serve it with ServeConn(Stdio()).
func Listen(spec string) (net.Listener, error) {
	scheme, rest, _ := strings.Cut(spec, ":")
	switch scheme {
	case "unix":
		if rest == "" {
			return nil, fmt.Errorf("listen %q: no socket path", spec)
		}
		return listenUnix(rest)
	case "tcp":
		if rest == "" {
			return nil, fmt.Errorf("listen %q: no address", spec)
		}
		return net.Listen("tcp", rest)
	case "vsock":
		port, err := strconv.ParseUint(rest, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("listen %q: bad vsock port", spec)
		}
		return listenVsock(uint32(port))
	case "fd":
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("listen %q: bad descriptor number", spec)
		}
		return fileListener(n, spec)
	case "stdio":
		return nil, fmt.Errorf("listen %q: stdio is one connection, not a listener", spec)
	default:
		return nil, fmt.Errorf("listen %q: unknown scheme %q (want unix:PATH, tcp:HOST:PORT, vsock:PORT, fd:N or stdio)", spec, scheme)
	}
}

// listenUnix listens on path, replacing a socket file nobody listens on.
func listenUnix(path string) (net.Listener, error) {
	ln, err := net.Listen("unix", path)
	if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
		return ln, err
	}
	if fi, serr := os.Lstat(path); serr != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil, err
	}
	if c, derr := net.DialTimeout("unix", path, time.Second); derr == nil {
		c.Close()
		return nil, err // someone serves there
	}
	if rerr := os.Remove(path); rerr != nil {
		return nil, err
	}
	return net.Listen("unix", path)
}

func fileListener(fd int, name string) (net.Listener, error) {
	f := os.NewFile(uintptr(fd), name)
	if f == nil {
		return nil, fmt.Errorf("listen %s: descriptor %d is not open", name, fd)
	}
	defer f.Close() // FileListener made its own copy
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", name, err)
	}
	return ln, nil
}

// SystemdListeners returns the sockets passed by systemd socket activation
// (LISTEN_PID is this process, LISTEN_FDS sockets from descriptor 3), or
// nil when the process was not socket-activated. The variables are
// removed so that children do not take them for theirs.
func SystemdListeners() ([]net.Listener, error) {
	pid, fds := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS")
	if fds == "" {
		return nil, nil
	}
	if p, err := strconv.Atoi(pid); err != nil || p != os.Getpid() {
		return nil, nil
	}
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	n, err := strconv.Atoi(fds)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("socket activation: bad LISTEN_FDS=%q", fds)
	}
	const firstFd = 3
	var out []net.Listener
	for fd := firstFd; fd < firstFd+n; fd++ {
		unix.CloseOnExec(fd)
		ln, err := fileListener(fd, "systemd:"+strconv.Itoa(fd))
		if err != nil {
			for _, l := range out {
				l.Close()
			}
			return nil, err
		}
		out = append(out, ln)
	}
	return out, nil
}

// Stdio returns this process's stdin and stdout as one connection, for
// ServeConn (a client that spawns the server with pipes).
func Stdio() io.ReadWriteCloser { return stdio{} }

type stdio struct{}

func (stdio) Read(p []byte) (int, error)  { return os.Stdin.Read(p) }
func (stdio) Write(p []byte) (int, error) { return os.Stdout.Write(p) }
func (stdio) Close() error {
	err := os.Stdin.Close()
	if err2 := os.Stdout.Close(); err == nil {
		err = err2
	}
	return err
}

// vsockListener accepts AF_VSOCK connections. Go's net package does not
// know the address family, so the descriptors are wrapped in os.File,
// which still uses the runtime poller.
type vsockListener struct {
	f    *os.File
	port uint32
}

func listenVsock(port uint32) (net.Listener, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("listen vsock:%d: vsock unavailable on this host: %w", port, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrVM{CID: unix.VMADDR_CID_ANY, Port: port}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen vsock:%d: %w", port, err)
	}
	if err := unix.Listen(fd, 128); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen vsock:%d: %w", port, err)
	}
	return &vsockListener{f: os.NewFile(uintptr(fd), "vsock"), port: port}, nil
}

func (l *vsockListener) Accept() (net.Conn, error) {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		return aerr != unix.EAGAIN
	})
	if err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, aerr
	}
	return &vsockConn{File: os.NewFile(uintptr(nfd), "vsock-conn"), port: l.port}, nil
}

func (l *vsockListener) Close() error   { return l.f.Close() }
func (l *vsockListener) Addr() net.Addr { return vsockAddr(l.port) }

type vsockConn struct {
	*os.File
	port uint32
}

func (c *vsockConn) LocalAddr() net.Addr  { return vsockAddr(c.port) }
func (c *vsockConn) RemoteAddr() net.Addr { return vsockAddr(0) }

type vsockAddr uint32

func (a vsockAddr) Network() string { return "vsock" }
func (a vsockAddr) String() string  { return "vsock:" + strconv.FormatUint(uint64(a), 10) }
