package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/union9p/union9p/test/p9wire"
)

// The trans=tcp path of `union9p qemu` without a guest: QEMU's user
// network runs `union9p qemu-courier PASS` for each connection a guest
// opens, with the connection (a TCP socket on loopback, made by slirp) on
// its stdin, stdout and stderr. These tests do what QEMU does.

// guestConn makes a loopback TCP connection, as slirp does for a
// guestfwd cmd:, runs the courier with one end on its stdio and returns
// the other end (the guest's side) and the courier's exit error.
func guestConn(t *testing.T, pass string) (net.Conn, error) {
	t.Helper()
	return guestConnVia(t, "qemu-courier", pass)
}

// guestConnVia is guestConn with the courier's command line given.
func guestConnVia(t *testing.T, courierArgs ...string) (net.Conn, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	guest, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { guest.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	f, err := server.(*net.TCPConn).File()
	server.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	courier := union9p(courierArgs...)
	courier.Stdin, courier.Stdout, courier.Stderr = f, f, f
	return guest, courier.Run()
}

// startPassServer serves a union on a pass socket and returns the
// socket's path and the server.
func startPassServer(t *testing.T, lower, upper, work, pass string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := union9p("serve", "--lower", lower, "--upper", upper, "--workdir", work, "--listen", "passfd:"+pass)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		if fi, err := os.Stat(pass); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return cmd, &stderr
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	t.Fatalf("no pass socket %s; server: %s", pass, stderr.String())
	return nil, nil
}

func newGuestClient(t *testing.T, pass string) *p9wire.Client {
	t.Helper()
	conn, err := guestConn(t, pass)
	if err != nil {
		t.Fatalf("courier: %v", err)
	}
	c, err := p9wire.NewClient(conn, 1<<20)
	if err != nil {
		t.Fatalf("version through the courier: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCourierServesGuestConnections: a connection handed over by the
// courier is served directly by the one server, with msize 1 MiB.
func TestCourierServesGuestConnections(t *testing.T) {
	lower, upper, work := layers(t)
	pass := filepath.Join(t.TempDir(), "u.pass")
	srv, stderr := startPassServer(t, lower, upper, work, pass)
	defer stopServer(t, srv, srv.Process)
	c := newGuestClient(t, pass)
	if c.Msize() != 1<<20 {
		t.Errorf("msize %d, want 1 MiB", c.Msize())
	}
	if got := readGreeting(t, c); got != "hello\n" {
		t.Fatalf("read %q through the courier; server: %s", got, stderr)
	}
}

// TestCourierWithoutServerSaysNothing: with no server, the courier exits
// non-zero and the guest sees the connection close with no bytes: text
// on its stdout or stderr would reach the guest's 9P client.
func TestCourierWithoutServerSaysNothing(t *testing.T) {
	conn, err := guestConn(t, filepath.Join(t.TempDir(), "nobody-listens"))
	if err == nil {
		t.Error("courier succeeded without a server")
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(conn)
	if len(b) != 0 || err != nil {
		t.Errorf("guest got %q, %v; want a silent EOF", b, err)
	}
}

// TestCourierHostileGuests: guests that send garbage, hang up in the
// middle of a request or reconnect over and over lose only their own
// connections; a guest connected all along and a new one are served.
func TestCourierHostileGuests(t *testing.T) {
	lower, upper, work := layers(t)
	pass := filepath.Join(t.TempDir(), "u.pass")
	srv, stderr := startPassServer(t, lower, upper, work, pass)
	defer stopServer(t, srv, srv.Process)
	steady := newGuestClient(t, pass)
	if got := readGreeting(t, steady); got != "hello\n" {
		t.Fatalf("read %q", got)
	}

	frame := func(size uint32, typ uint8, rest []byte) []byte {
		b := binary.LittleEndian.AppendUint32(nil, size)
		return append(append(b, typ, 1, 0), rest...)
	}
	for name, send := range map[string][]byte{
		"random bytes":          bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 1000),
		"frame larger than any": frame(0xffffffff, 100, nil),
		"frame below a header":  frame(3, 100, nil),
		"unknown type":          frame(7+4, 250, []byte{1, 2, 3, 4}),
		"half a frame, then gone": frame(7+64, 100,
			[]byte("only the first bytes of a Tversion")),
	} {
		conn, err := guestConn(t, pass)
		if err != nil {
			t.Fatalf("%s: courier: %v", name, err)
		}
		conn.Write(send)
		conn.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, conn) // an error answer and a hang-up, or a timeout
		conn.Close()
	}

	// A client that hangs up with requests in flight.
	mid := newGuestClient(t, pass)
	if _, err := mid.Attach(0, "", "", 0); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		mid.Start(p9wire.Twalk, new(p9wire.Encoder).U32(0).U32(uint32(100+i)).U16(1).Str("greeting").Bytes())
	}
	mid.Close()

	// Many guests connecting and going at once.
	for range 100 {
		conn, err := guestConn(t, pass)
		if err != nil {
			t.Fatalf("reconnect: courier: %v", err)
		}
		conn.Close()
	}

	if got := readGreeting(t, newGuestClient(t, pass)); got != "hello\n" {
		t.Errorf("a new guest after the hostile ones read %q; server: %s", got, stderr)
	}
	if _, err := steady.Walk(0, 2, "greeting"); err != nil {
		t.Errorf("the guest connected all along: %v; server: %s", err, stderr)
	}
	if srv.ProcessState != nil {
		t.Fatalf("server exited: %s", stderr)
	}
}

// TestCourierAfterServerRestart: a server restarted on the same pass
// socket serves the next connection (a guest remounts); the connection
// to the old server has ended.
func TestCourierAfterServerRestart(t *testing.T) {
	lower, upper, work := layers(t)
	pass := filepath.Join(t.TempDir(), "u.pass")
	srv, _ := startPassServer(t, lower, upper, work, pass)
	old := newGuestClient(t, pass)
	if got := readGreeting(t, old); got != "hello\n" {
		t.Fatalf("read %q", got)
	}
	stopServer(t, srv, srv.Process)
	srv, stderr := startPassServer(t, lower, upper, work, pass)
	defer stopServer(t, srv, srv.Process)
	if _, err := old.Walk(0, 2, "greeting"); err == nil {
		t.Error("the connection to the stopped server still answers")
	}
	if got := readGreeting(t, newGuestClient(t, pass)); got != "hello\n" {
		t.Fatalf("after the restart read %q; server: %s", got, stderr)
	}
}
