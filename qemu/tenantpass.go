package qemu

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Attaching guests to a tenant of a running multi-tenant server.
//
// The tenant server (`union9p serve --tenants`) keeps one attach socket
// beside its control socket, owner-only as that one is. A courier (see
// [PassFD]; here `union9p qemu --tenant NAME`'s) connects to it and sends
// one message: the tenant's name as data and the guest's connection as
// SCM_RIGHTS. The server answers one line, "ok" or "error: WHY", and
// serves the connection as that tenant. The tenant is what the operator's
// union9p qemu put on the courier's command line; nothing the guest sends
// takes part, and only the server's user (or root) can reach the socket.

// maxTenantName is the longest name the message carries (a tenant name
// is at most 255 bytes; see union/tenant.ValidName).
const maxTenantName = 255

// AttachFD hands the connection fd to the tenant server's attach socket
// at path, as tenant name, and returns the server's verdict: nil once the
// server serves it, else an error saying why (no server, the tenant does
// not exist, ...).
func AttachFD(path, name string, fd int) error {
	if name == "" || len(name) > maxTenantName {
		return fmt.Errorf("attach to %s: tenant name of %d bytes (want 1 to %d)", path, len(name), maxTenantName)
	}
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("attach to %s: %w", path, err)
	}
	defer unix.Close(s)
	if err := unix.Connect(s, &unix.SockaddrUnix{Name: path}); err != nil {
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ECONNREFUSED):
			return fmt.Errorf("attach socket %s: no tenant server is running there (start union9p serve --tenants)", path)
		case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
			return fmt.Errorf("attach socket %s: permission denied (it is owner-only: run as the server's user or root)", path)
		}
		return fmt.Errorf("attach to %s: connect: %w", path, err)
	}
	if err := unix.Sendmsg(s, []byte(name), unix.UnixRights(fd), nil, 0); err != nil {
		return fmt.Errorf("attach to %s: sendmsg: %w", path, err)
	}
	_ = unix.SetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: int64(passTimeout / time.Second)})
	var answer []byte
	buf := make([]byte, 512)
	for len(answer) < 4096 && !strings.Contains(string(answer), "\n") {
		n, err := unix.Read(s, buf)
		if n <= 0 || err != nil {
			break
		}
		answer = append(answer, buf[:n]...)
	}
	line, _, _ := strings.Cut(string(answer), "\n")
	switch {
	case line == "ok":
		return nil
	case strings.HasPrefix(line, "error: "):
		return errors.New(strings.TrimPrefix(line, "error: "))
	}
	return fmt.Errorf("attach to %s: no answer from the server", path)
}

// UnixAcceptor is a unix socket listener: *net.UnixListener, or one that
// embeds it.
type UnixAcceptor interface {
	AcceptUnix() (*net.UnixConn, error)
}

// ServeAttach accepts couriers on ln until it is closed (then it returns
// nil). For each, it reads the tenant name and the passed connection and
// calls attach, which either takes the connection (and serves it) or
// returns why not; the courier is told either way. A courier that sends
// no descriptor, a descriptor that is not a stream socket, or nothing
// within 5 s is dropped; each courier is read in a goroutine of its own,
// so one that stalls holds up no other.
func ServeAttach(ln UnixAcceptor, attach func(name string, conn net.Conn) error) error {
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			time.Sleep(50 * time.Millisecond) // out of descriptors and the like
			continue
		}
		go func() {
			defer c.Close()
			name, conn, err := receiveAttach(c)
			if err == nil {
				if err = attach(name, conn); err != nil {
					conn.Close()
				}
			}
			w := bufio.NewWriter(c)
			if err != nil {
				fmt.Fprintf(w, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			} else {
				fmt.Fprintln(w, "ok")
			}
			_ = c.SetWriteDeadline(time.Now().Add(passTimeout))
			_ = w.Flush()
		}()
	}
}

// receiveAttach reads one courier's message: the name and the connection.
func receiveAttach(c *net.UnixConn) (string, net.Conn, error) {
	_ = c.SetReadDeadline(time.Now().Add(passTimeout))
	buf := make([]byte, maxTenantName+1)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return "", nil, fmt.Errorf("reading the courier: %w", err)
	}
	conn, err := connFromRights(oob[:oobn])
	if err != nil {
		return "", nil, err
	}
	if n == 0 || n > maxTenantName {
		conn.Close()
		return "", nil, fmt.Errorf("tenant name of %d bytes (want 1 to %d)", n, maxTenantName)
	}
	return string(buf[:n]), conn, nil
}

// connFromRights turns the first descriptor of an SCM_RIGHTS message into
// a net.Conn, closing any others (a courier sends one).
func connFromRights(oob []byte) (net.Conn, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		if got, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, got...)
		}
	}
	if len(fds) == 0 {
		return nil, errors.New("no descriptor passed")
	}
	for _, fd := range fds[1:] {
		unix.Close(fd)
	}
	return streamConn(fds[0])
}
