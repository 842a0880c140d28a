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
