package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/union9p/union9p/test/p9wire"
	"golang.org/x/sys/unix"
)

// TestMain lets the tests run this binary's main as a child process.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == fakeQemuArg {
		os.Exit(fakeQemu(os.Args[2:]))
	}
	if os.Getenv("UNION9P_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// union9p starts the command with args and an environment without
// UNION9P_* settings from the caller.
func union9p(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = []string{"UNION9P_TEST_RUN_MAIN=1", "PATH=" + os.Getenv("PATH")}
	return cmd
}

func TestServeRefusesBadFlags(t *testing.T) {
	base := t.TempDir()
	mk := func(p string) string {
		t.Helper()
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	lower := mk(filepath.Join(base, "lower"))
	upper := mk(filepath.Join(base, "upper"))
	work := mk(filepath.Join(base, "work"))
	upperInLower := mk(filepath.Join(lower, "up"))
	lowerInUpper := mk(filepath.Join(upper, "low"))
	shmWork, err := os.MkdirTemp("/dev/shm", "union9p-work")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(shmWork)
	var a, b unix.Stat_t
	if unix.Stat(shmWork, &a) != nil || unix.Stat(upper, &b) != nil || a.Dev == b.Dev {
		t.Fatal("test setup: /dev/shm must be another filesystem than TMPDIR")
	}
	sock := "unix:" + filepath.Join(base, "sock")

	tests := []struct {
		name     string
		args     []string
		code     int
		mentions string
	}{
		{"missing lower", []string{"--lower", filepath.Join(base, "nope"), "--upper", upper, "--workdir", work, "--listen", sock}, 1, "nope"},
		{"upper inside lower", []string{"--lower", lower, "--upper", upperInLower, "--workdir", work, "--listen", sock}, 1, "must not contain each other"},
		{"lower inside upper", []string{"--lower", lowerInUpper, "--upper", upper, "--workdir", work, "--listen", sock}, 1, "must not contain each other"},
		{"workdir on another filesystem", []string{"--lower", lower, "--upper", upper, "--workdir", shmWork, "--listen", sock}, 1, "same filesystem"},
		{"unknown listen scheme", []string{"--lower", lower, "--upper", upper, "--workdir", work, "--listen", "udp:1.2.3.4:5"}, 2, "udp"},
		{"no listen", []string{"--lower", lower, "--upper", upper, "--workdir", work}, 2, "--listen"},
		{"upper without workdir", []string{"--lower", lower, "--upper", upper, "--listen", sock}, 2, "--workdir"},
		{"read-only with upper", []string{"--lower", lower, "--upper", upper, "--workdir", work, "--read-only", "--listen", sock}, 2, "--read-only"},
		{"unknown flag", []string{"--lower", lower, "--frobnicate", "--listen", sock}, 2, "frobnicate"},
		{"bad msize", []string{"--lower", lower, "--read-only", "--msize", "100", "--listen", sock}, 2, "msize"},
		{"bad -o option", []string{"-o", "lowerdir=" + lower + ",colour=red", "--read-only", "--listen", sock}, 2, "colour"},
		{"bad redirect_dir", []string{"--lower", lower, "--upper", upper, "--workdir", work, "-o", "redirect_dir=maybe", "--listen", sock}, 2, "redirect_dir"},
		{"metacopy without redirects", []string{"--lower", lower, "--upper", upper, "--workdir", work, "-o", "redirect_dir=off,metacopy=on", "--listen", sock}, 1, "metacopy"},
		{"-o with an empty lower", []string{"-o", "lowerdir=" + lower + ":", "--read-only", "--listen", sock}, 1, "empty lowerdir"},
		{"-o with missing lower", []string{"-o", "lowerdir=" + lower + ":" + filepath.Join(base, "gone") + ",upperdir=" + upper + ",workdir=" + work, "--listen", sock}, 1, "gone"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		cmd := union9p(append([]string{"serve"}, tt.args...)...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != tt.code {
			t.Errorf("%s: exit %v, want code %d; stderr: %s", tt.name, err, tt.code, stderr.String())
			continue
		}
		if !strings.Contains(stderr.String(), tt.mentions) {
			t.Errorf("%s: message does not name %q: %s", tt.name, tt.mentions, stderr.String())
		}
		for _, dir := range []string{upper, work, shmWork} {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if dir == upper && e.Name() == "low" {
					continue
				}
				t.Errorf("%s: %s was written: %s", tt.name, dir, e.Name())
			}
		}
		if _, err := os.Lstat(filepath.Join(base, "sock")); err == nil {
			t.Errorf("%s: socket created", tt.name)
			os.Remove(filepath.Join(base, "sock"))
		}
	}
}

func TestServeStopsOnSIGTERM(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{"lower", "upper", "work"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(base, "sock")
	cmd := union9p("--log-level", "debug", "serve", "-o",
		"lowerdir="+filepath.Join(base, "lower")+",upperdir="+filepath.Join(base, "upper")+",workdir="+filepath.Join(base, "work"),
		"--listen", "unix:"+sock)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var c *p9wire.Client
	var err error
	for range 100 {
		if c, err = p9wire.Dial("unix", sock, 65536); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("dial: %v; stderr: %s", err, stderr.String())
	}
	if _, err := c.Attach(0, "", "", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Mkdir(0, "made", 0o755, 0); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v; stderr: %s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("still running 10s after SIGTERM; stderr: %s", stderr.String())
	}
	c.Close()
	if _, err := os.Stat(filepath.Join(base, "upper", "made")); err != nil {
		t.Errorf("mkdir through the server: %v", err)
	}
}
