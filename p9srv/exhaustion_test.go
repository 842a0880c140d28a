package p9srv

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/union9p/union9p/test/p9wire"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// lowFdServerEnv makes the test binary a server with a small descriptor
// limit (see TestMain): "lower\nsocket".
const lowFdServerEnv = "P9SRV_TEST_LOWFD_SERVER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(lowFdServerEnv); spec != "" {
		os.Exit(lowFdServer(spec))
	}
	os.Exit(m.Run())
}

// lowFdServer serves a read-only union of lower with RLIMIT_NOFILE at 64
// until stdin closes, logging warnings to stderr.
func lowFdServer(spec string) int {
	lower, sock, _ := strings.Cut(spec, "\n")
	u, err := union.Open(union.Options{Lowers: []string{lower}})
	if err != nil {
		return 1
	}
	srv, err := New(Config{Union: u, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return 1
	}
	ln, err := Listen("unix:" + sock)
	if err != nil {
		return 1
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 64, Max: 64}); err != nil {
		return 1
	}
	go srv.Serve(context.Background(), ln)
	os.Stdout.WriteString("ready\n")
	bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// When the host has no descriptors left, the request that needed one
// fails with EMFILE, the log says so, accepting waits instead of failing,
// and everything works again once descriptors are free.
func TestOutOfDescriptors(t *testing.T) {
	dir := t.TempDir()
	lower, sock := filepath.Join(dir, "lower"), filepath.Join(dir, "sock")
	must(t, os.Mkdir(lower, 0o755))
	for i := range 200 {
		must(t, os.WriteFile(filepath.Join(lower, "f"+itoa(uint32(i))), []byte("x"), 0o644))
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lowFdServerEnv+"="+lower+"\n"+sock)
	var logs lockedBuffer
	cmd.Stderr = &logs
	stdin, err := cmd.StdinPipe()
	must(t, err)
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("server: %q %v\n%s", line, err, logs.String())
	}

	c, err := p9wire.Dial("unix", sock, 65536)
	must(t, err)
	defer c.Close()
	_, err = c.Attach(0, "", "", 0)
	must(t, err)
	opened, failed := 0, 0
	for i := range 200 {
		fid := uint32(1 + i)
		if _, err := c.Walk(0, fid, "f"+itoa(uint32(i))); err != nil {
			wantErrno(t, "walk without descriptors", err, unix.EMFILE)
			failed++
			continue
		}
		if _, _, err := c.Lopen(fid, p9wire.ORdonly); err != nil {
			wantErrno(t, "open without descriptors", err, unix.EMFILE)
			failed++
			continue
		}
		opened++
	}
	t.Logf("opened %d of 200 files with RLIMIT_NOFILE 64; %d failed", opened, failed)
	if failed == 0 || opened == 0 {
		t.Fatalf("opened %d, failed %d: the limit did not bite", opened, failed)
	}
	// The connection is still served.
	if _, err := c.Getattr(0, p9wire.GetattrBasic); err != nil {
		t.Errorf("getattr while out of descriptors: %v", err)
	}

	// A new connection cannot be accepted now; it is once fids go.
	type dialed struct {
		c   *p9wire.Client
		err error
	}
	late := make(chan dialed, 1)
	go func() {
		lc, err := p9wire.Dial("unix", sock, 65536)
		late <- dialed{lc, err}
	}()
	time.Sleep(300 * time.Millisecond)
	for i := range 200 {
		c.Clunk(uint32(1 + i))
	}
	select {
	case d := <-late:
		if d.err != nil {
			t.Fatalf("connection made while out of descriptors: %v", d.err)
		}
		defer d.c.Close()
		if _, err := d.c.Attach(0, "", "", 0); err != nil {
			t.Errorf("attach on the late connection: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("connection made while out of descriptors never served")
	}
	for i := range 20 {
		if _, err := c.Walk(0, 500, "f"+itoa(uint32(i))); err != nil {
			t.Fatalf("walk after descriptors were freed: %v", err)
		}
		if _, _, err := c.Lopen(500, p9wire.ORdonly); err != nil {
			t.Fatalf("open after descriptors were freed: %v", err)
		}
		must(t, c.Clunk(500))
	}
	out := logs.String()
	for _, want := range []string{"host out of resources", "too many open files"} {
		if !strings.Contains(out, want) {
			t.Errorf("server log lacks %q:\n%s", want, out)
		}
	}
}
