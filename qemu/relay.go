package qemu

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Socketpair returns the two ends of a unix stream socketpair, both
// close-on-exec. One end is relayed to the port, the other is handed to
// the kernel with trans=fd.
func Socketpair() (relayEnd, kernelEnd *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "relay"), os.NewFile(uintptr(fds[1]), "kernel"), nil
}

// Relay copies bytes both ways between a port and the relay end of a
// socketpair until the socket side ends: the kernel closes its end when
// the file system is unmounted (or the mount failed), and the relay then
// returns nil. It also returns if the port fails (the host went away),
// with that error. Relay closes neither file; the caller exits or closes
// them afterwards (a goroutine may stay blocked reading the port until
// then).
func Relay(port io.ReadWriter, sock io.ReadWriter) error {
	portErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(sock, port)
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		portErr <- fmt.Errorf("port to kernel: %w", err)
	}()
	sockErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(port, sock)
		sockErr <- err
	}()
	select {
	case err := <-sockErr:
		if err != nil && !errors.Is(err, unix.ECONNRESET) {
			return fmt.Errorf("kernel to port: %w", err)
		}
		return nil
	case err := <-portErr:
		return err
	}
}

// SpliceRelay is [Relay] with the guest-to-host direction (requests and
// the data of writes) moved by splice(2) through a pipe, socket to pipe
// to port, so the bytes are not copied through a user buffer; the
// virtio console takes spliced pages. The host-to-guest direction is
// read(2) and write(2) with a buffer as large as the largest message,
// since a port cannot be spliced from. Returns as [Relay] does.
// Either not being a file, it is [Relay].
func SpliceRelay(portRW, sockRW io.ReadWriter) error {
	port, ok1 := portRW.(*os.File)
	sock, ok2 := sockRW.(*os.File)
	if !ok1 || !ok2 {
		return Relay(portRW, sockRW)
	}
	portErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 1<<20)
		_, err := io.CopyBuffer(struct{ io.Writer }{sock}, struct{ io.Reader }{port}, buf)
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		portErr <- fmt.Errorf("port to kernel: %w", err)
	}()
	sockErr := make(chan error, 1)
	go func() { sockErr <- spliceCopy(port, sock) }()
	select {
	case err := <-sockErr:
		if err != nil && !errors.Is(err, unix.ECONNRESET) {
			return fmt.Errorf("kernel to port: %w", err)
		}
		return nil
	case err := <-portErr:
		return err
	}
}

// spliceCopy moves bytes from src (a socket) to dst (a port) through a
// pipe until src ends (nil) or fails.
func spliceCopy(dst, src *os.File) error {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return err
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	_, _ = unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, 1<<20)
	// Blocking descriptors: this goroutine owns its thread while it
	// waits, which is what a relay does anyway.
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	for {
		n, err := unix.Splice(sfd, nil, p[1], nil, 1<<20, unix.SPLICE_F_MOVE)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		for n > 0 {
			m, err := unix.Splice(p[0], nil, dfd, nil, int(n), unix.SPLICE_F_MOVE)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			n -= m
		}
	}
}
