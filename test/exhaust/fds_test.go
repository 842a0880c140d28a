package exhaust

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/union9p/union9p/test/internal/vmhost"
	"github.com/union9p/union9p/test/p9wire"
	"golang.org/x/sys/unix"
)

const (
	fdLimit   = 64
	openFiles = 200
)

// TestFdExhaustion: a server limited to 64 descriptors, a client that walks
// to and opens 200 lower files keeping them all. Opens beyond the limit
// fail with EMFILE or ENFILE (never another errno, never a dropped
// connection); a second connection made before keeps working; once the
// first client clunks its fids, both can open every file again, and a new
// connection is accepted.
func TestFdExhaustion(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("runs as root (the server's layers are root's)")
	}
	repo, err := vmhost.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "union9p")
	if err := vmhost.GoBuild(context.Background(), repo, "./cmd/union9p", bin); err != nil {
		t.Fatal(err)
	}
	lower, upper, work := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{lower, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := range openFiles {
		if err := os.WriteFile(filepath.Join(lower, fmt.Sprintf("f%d", i)), []byte(fmt.Sprintf("file %d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "sock")
	// ulimit -n sets the hard limit too, so Go's start-up raise of the
	// soft limit stays at 64.
	cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, fdLimit), bin, "serve",
		"--lower", lower, "--upper", upper, "--workdir", work, "--listen", "unix:"+sock)
	var log strings.Builder
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("server log:\n%s", log.String())
		}
	}()
	dial := func() *p9wire.Client {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := p9wire.Dial("unix", sock, 65536)
			if err == nil {
				if _, err := c.Attach(0, "root", "", 0); err != nil {
					t.Fatalf("attach: %v", err)
				}
				return c
			}
			if time.Now().After(deadline) {
				t.Fatalf("dial: %v", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	a, b := dial(), dial()
	defer a.Close()
	defer b.Close()

	// b holds one open file to read from while a exhausts the server.
	if _, err := b.Walk(0, 1, "f0"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Lopen(1, unix.O_RDONLY); err != nil {
		t.Fatal(err)
	}

	opened, refused := 0, 0
	for i := range openFiles {
		fid := uint32(100 + i)
		if _, err := a.Walk(0, fid, fmt.Sprintf("f%d", i)); err != nil {
			wantExhausted(t, fmt.Sprintf("walk f%d", i), err)
			refused++
			continue
		}
		if _, _, err := a.Lopen(fid, unix.O_RDONLY); err != nil {
			wantExhausted(t, fmt.Sprintf("open f%d", i), err)
			refused++
			continue
		}
		opened++
	}
	t.Logf("under ulimit -n %d: %d of %d files opened, %d refused with EMFILE/ENFILE", fdLimit, opened, openFiles, refused)
	if refused == 0 {
		t.Fatalf("all %d opens succeeded under ulimit -n %d: the limit did not apply", openFiles, fdLimit)
	}
	// A connection attempt while exhausted may wait in the backlog (accept
	// has no descriptor to give) or fail, but must not end the server; it
	// is served once descriptors are free again (checked below).
	late := make(chan *p9wire.Client, 1)
	go func() {
		c, err := p9wire.Dial("unix", sock, 65536)
		if err != nil {
			c = nil
		}
		late <- c
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-exited:
		t.Fatalf("the server exited while out of descriptors: %v", err)
	default:
	}
	// The other connection still gets answers, from what it holds.
	if got, err := b.Read(1, 0, 100); err != nil || string(got) != "file 0\n" {
		t.Fatalf("read on the other connection while exhausted: %q, %v", got, err)
	}
	if _, err := b.Getattr(0, p9wire.GetattrBasic); err != nil {
		t.Fatalf("getattr on the other connection while exhausted: %v", err)
	}

	// a lets go: everything works again.
	for i := range openFiles {
		a.Clunk(uint32(100 + i))
	}
	clients := []*p9wire.Client{a, b, dial()}
	select {
	case c := <-late:
		if c != nil {
			defer c.Close()
			if _, err := c.Attach(0, "root", "", 0); err != nil {
				t.Fatalf("attach on the connection made while exhausted: %v", err)
			}
			clients = append(clients, c)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the connection made while exhausted was never served after recovery")
	}
	for _, c := range clients {
		for i := range openFiles {
			fid := uint32(1000 + i)
			if _, err := c.Walk(0, fid, fmt.Sprintf("f%d", i)); err != nil {
				t.Fatalf("walk f%d after the fids were clunked: %v", i, err)
			}
			if _, _, err := c.Lopen(fid, unix.O_RDONLY); err != nil {
				t.Fatalf("open f%d after the fids were clunked: %v", i, err)
			}
			if got, err := c.Read(fid, 0, 100); err != nil || string(got) != fmt.Sprintf("file %d\n", i) {
				t.Fatalf("read f%d after recovery: %q, %v", i, got, err)
			}
			c.Clunk(fid)
		}
	}
}

// wantExhausted fails unless err is EMFILE or ENFILE answered by the
// server (a bare errno; a dropped connection is something else).
func wantExhausted(t *testing.T, what string, err error) {
	t.Helper()
	if errno, ok := err.(unix.Errno); !ok || (errno != unix.EMFILE && errno != unix.ENFILE) {
		t.Fatalf("%s while out of descriptors: %v (%T), want EMFILE or ENFILE", what, err, err)
	}
}
