package qemu

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// acceptOne runs Accept in the background.
func acceptOne(ln net.Listener) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			ch <- c
		}
		close(ch)
	}()
	return ch
}

// TestPassListener: a descriptor handed over by PassFD comes out of
// Accept as a connection that carries bytes both ways, and the courier's
// copy may be closed at once.
func TestPassListener(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pass")
	ln, err := ListenPassed(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("pass socket mode: %v %v, want 0600", fi.Mode(), err)
	}
	guest, courier, err := Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	defer guest.Close()
	accepted := acceptOne(ln)
	if err := PassFD(path, int(courier.Fd())); err != nil {
		t.Fatal(err)
	}
	courier.Close()
	var conn net.Conn
	select {
	case conn = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
	}
	if conn == nil {
		t.Fatal("Accept failed")
	}
	defer conn.Close()
	if _, err := guest.Write([]byte("Tversion")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "Tversion" {
		t.Fatalf("server read %q, %v", buf, err)
	}
	if _, err := conn.Write([]byte("Rversion")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(guest, buf); err != nil || string(buf) != "Rversion" {
		t.Fatalf("guest read %q, %v", buf, err)
	}
	conn.Close()
	if n, err := guest.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("guest after the server closed: %d, %v; want EOF", n, err)
	}
}

// TestPassListenerBadCouriers: couriers that send no descriptor, a
// descriptor that is no stream socket, or nothing at all, are dropped
// without ending the listener; the next good courier is served.
func TestPassListenerBadCouriers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pass")
	ln, err := ListenPassed(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := acceptOne(ln)

	dial := func() *net.UnixConn {
		t.Helper()
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Bytes without a descriptor.
	c := dial()
	c.Write([]byte("garbage, no SCM_RIGHTS"))
	io.ReadAll(c) // the listener hangs up
	c.Close()
	// A pipe: not a socket.
	r, w, _ := os.Pipe()
	if err := PassFD(path, int(r.Fd())); err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
	// A datagram socket: not a stream.
	fds, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err := PassFD(path, fds[0]); err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[0])
	unix.Close(fds[1])
	// Connected, then gone without a word.
	dial().Close()

	guest, courier, _ := Socketpair()
	defer guest.Close()
	if err := PassFD(path, int(courier.Fd())); err != nil {
		t.Fatal(err)
	}
	courier.Close()
	select {
	case conn := <-accepted:
		if conn == nil {
			t.Fatal("Accept failed after bad couriers")
		}
		conn.Close()
	case <-time.After(3 * passTimeout):
		t.Fatal("the good courier was not served after bad ones")
	}
}
