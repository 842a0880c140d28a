package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeThenLs is the README's first screen: serve a base tree with an
// upper, then list it with the bundled client.
func TestServeThenLs(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{"base/sub", "upper", "work"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "base/greeting"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(base, "u9.sock")
	srv := union9p("serve", "--lower", filepath.Join(base, "base"), "--upper", filepath.Join(base, "upper"),
		"--workdir", filepath.Join(base, "work"), "--listen", "unix:"+sock)
	var stderr bytes.Buffer
	srv.Stderr = &stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
	}()
	var out []byte
	var err error
	for range 100 {
		out, err = union9p("ls", "unix:"+sock, "/").CombinedOutput()
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("ls: %v: %s; server: %s", err, out, stderr.String())
	}
	if got, want := string(out), "- 6 greeting\nd "; !strings.Contains(got, "- 6 greeting\n") || !strings.Contains(got, "sub\n") {
		t.Fatalf("ls printed %q, want lines like %q...", got, want)
	}
	out, err = union9p("ls", "unix:"+sock, "/missing").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "/missing: no such file or directory") {
		t.Fatalf("ls of a missing path: %v %q", err, out)
	}
}
