package qemu

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Acknowledging at once what QEMU's user network forwards.
//
// A guestfwd cmd: connection reaches the server as one end of a TCP
// connection over the host's loopback that QEMU's user network (libslirp)
// makes for the command (a TCP pair, for its out-of-band data). Slirp
// writes the guest's data into its end segment by segment as the guest
// sends them, with Nagle's algorithm on: after the first piece of a
// request it holds the rest until the server acknowledges that piece.
// The server has nothing to say until it has the whole request, so its
// kernel delays that acknowledgement (delayed ACK, 40 ms). Every request
// larger than one of the guest's 1460-byte segments (a 4 KiB page that
// cache=loose writes back, every slice of a 1 MiB write) then cost 40 ms:
// measured as 0.1 MiB/s, with QEMU's filter-dump showing the guest's
// segments acknowledged by slirp at once and the server's reply 42 ms
// later, and strace on the server reading 1460 bytes, then the rest
// 40 ms after. We cannot switch Nagle off on slirp's end, so the
// server's end acknowledges at once instead: TCP_QUICKACK after every
// read (the kernel drops back to delayed ACKs by itself, so it must be
// set again each time).

// quickAckConn is a TCP connection that sets TCP_QUICKACK after every
// read. Safe for concurrent use as net.TCPConn is.
type quickAckConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

// withQuickAck wraps tc; if its descriptor cannot be reached it is
// returned as it is (only slower).
func withQuickAck(tc *net.TCPConn) net.Conn {
	raw, err := tc.SyscallConn()
	if err != nil {
		return tc
	}
	return &quickAckConn{TCPConn: tc, raw: raw}
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if n > 0 {
		_ = c.raw.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
		})
	}
	return n, err
}
