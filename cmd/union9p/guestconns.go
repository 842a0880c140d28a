package main

import (
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// guestConns keeps a copy of each guest connection union9p qemu handed to
// a running server over the tap, so that it can end them when its QEMU
// exits. A guest that vanishes with its tap sends no FIN, and keepalive
// probes that cannot be routed are retried forever, so without this the
// server would hold an exited guest's connection (and its fids) for good.
// Safe for concurrent use.
type guestConns struct {
	mu    sync.Mutex
	conns []net.Conn
}

// keep holds c until shutdownAll. Connections the server or the guest has
// already ended (POLLHUP or POLLRDHUP) are dropped first, so a guest that
// reconnects again and again holds only its live connections here.
func (g *guestConns) keep(c net.Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	live := g.conns[:0]
	for _, old := range g.conns {
		if ended(old) {
			old.Close()
			continue
		}
		live = append(live, old)
	}
	g.conns = append(live, c)
}

// shutdownAll ends every kept connection for both sides: shutdown acts on
// the socket the server shares, so the server reads end-of-file.
func (g *guestConns) shutdownAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		withFd(c, func(fd int) { unix.Shutdown(fd, unix.SHUT_RDWR) })
		c.Close()
	}
	g.conns = nil
}

// ended reports whether c's socket is hung up in either direction. It only
// polls: reading would take bytes meant for the server.
func ended(c net.Conn) bool {
	hup := false
	withFd(c, func(fd int) {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		if n, err := unix.Poll(p, 0); err == nil && n > 0 {
			hup = p[0].Revents&(unix.POLLHUP|unix.POLLRDHUP|unix.POLLERR|unix.POLLNVAL) != 0
		}
	})
	return hup
}

func withFd(c net.Conn, f func(fd int)) {
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			raw.Control(func(fd uintptr) { f(int(fd)) })
		}
	}
}
