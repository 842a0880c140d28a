package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/union9p/union9p/test/p9wire"
	"golang.org/x/sys/unix"
)

// layers makes a lower with one file, an upper and a workdir.
func layers(t *testing.T) (lower, upper, work string) {
	t.Helper()
	base := t.TempDir()
	lower, upper, work = filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work")
	for _, d := range []string{lower, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "greeting"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return lower, upper, work
}

// readGreeting attaches through c and reads /greeting.
func readGreeting(t *testing.T, c *p9wire.Client) string {
	t.Helper()
	if _, err := c.Attach(0, "", "", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Walk(0, 1, "greeting"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Lopen(1, p9wire.ORdonly); err != nil {
		t.Fatal(err)
	}
	data, err := c.Read(1, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// inheritedListener makes a listening unix socket to pass to the server.
func inheritedListener(t *testing.T) (*os.File, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false) // the server owns the socket now
	f, err := ul.File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	t.Cleanup(func() { f.Close() })
	return f, sock
}

func dialRetry(t *testing.T, sock string) *p9wire.Client {
	t.Helper()
	var err error
	for range 100 {
		var c *p9wire.Client
		if c, err = p9wire.Dial("unix", sock, 65536); err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("dial %s: %v", sock, err)
	return nil
}

func stopServer(t *testing.T, cmd interface {
	Wait() error
}, p *os.Process) {
	p.Signal(syscall.SIGTERM)
	cmd.Wait()
}

func TestServeSystemdActivation(t *testing.T) {
	lower, upper, work := layers(t)
	f, sock := inheritedListener(t)
	cmd := union9p("serve", "--lower", lower, "--upper", upper, "--workdir", work)
	cmd.ExtraFiles = []*os.File{f} // fd 3
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// LISTEN_PID must be the server's own pid: set it in the child, which
	// the test binary's main does not; so start through a shell that
	// exports it after fork.
	cmd.Env = append(cmd.Env, "LISTEN_FDS=1")
	cmd.Args = append([]string{"/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, cmd.Path}, cmd.Args[1:]...)
	cmd.Path = "/bin/sh"
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stopServer(t, cmd, cmd.Process)
	if got := readGreeting(t, dialRetry(t, sock)); got != "hello\n" {
		t.Fatalf("read %q through the activated socket; server: %s", got, stderr.String())
	}
}

func TestServeInheritedFd(t *testing.T) {
	lower, upper, work := layers(t)
	f, sock := inheritedListener(t)
	cmd := union9p("serve", "--lower", lower, "--upper", upper, "--workdir", work, "--listen", "fd:3")
	cmd.ExtraFiles = []*os.File{f}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stopServer(t, cmd, cmd.Process)
	if got := readGreeting(t, dialRetry(t, sock)); got != "hello\n" {
		t.Fatalf("read %q through fd:3; server: %s", got, stderr.String())
	}
}

func TestServeStdio(t *testing.T) {
	lower, upper, work := layers(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "client"), os.NewFile(uintptr(fds[1]), "server")
	cmd := union9p("serve", "--lower", lower, "--upper", upper, "--workdir", work, "--listen", "stdio")
	cmd.Stdin, cmd.Stdout = theirs, theirs
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	conn, err := net.FileConn(ours) // pollable, so that Close ends a blocked read
	if err != nil {
		t.Fatal(err)
	}
	ours.Close()
	c, err := p9wire.NewClient(conn, 65536)
	if err != nil {
		t.Fatal(err)
	}
	if got := readGreeting(t, c); got != "hello\n" {
		t.Fatalf("read %q over stdio; server: %s", got, stderr.String())
	}
	// The client hanging up ends a stdio-only server, with status 0.
	c.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stdio server exit: %v; %s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("stdio server did not exit after the client hung up")
	}
}

func TestServeReadOnlyAnswersEROFS(t *testing.T) {
	lower, _, _ := layers(t)
	sock := filepath.Join(t.TempDir(), "s")
	cmd := union9p("serve", "--lower", lower, "--read-only", "--listen", "unix:"+sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stopServer(t, cmd, cmd.Process)
	c := dialRetry(t, sock)
	if got := readGreeting(t, c); got != "hello\n" {
		t.Fatalf("read %q", got)
	}
	_, err := c.Mkdir(0, "new", 0o755, 0)
	if err != unix.EROFS {
		t.Fatalf("mkdir on a read-only union: %v, want EROFS", err)
	}

}

// An upper alone is a union too: a plain writable directory.
func TestServeUpperOnly(t *testing.T) {
	_, upper, work := layers(t)
	sock := filepath.Join(t.TempDir(), "s")
	cmd := union9p("serve", "--upper", upper, "--workdir", work, "--listen", "unix:"+sock)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stopServer(t, cmd, cmd.Process)
	c := dialRetry(t, sock)
	if _, err := c.Attach(0, "", "", 0); err != nil {
		t.Fatalf("attach: %v; %s", err, stderr.String())
	}
	if _, err := c.Mkdir(0, "made", 0o755, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(upper, "made")); err != nil {
		t.Fatal(err)
	}
}
