package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A second server on the layers of a running one is refused with the
// first one's pid, and leaves the first one's work directory alone.
func TestSecondServeOnSameLayersIsRefused(t *testing.T) {
	lower, upper, work := layers(t)
	sock := filepath.Join(t.TempDir(), "s")
	first := union9p("serve", "--lower", lower, "--upper", upper, "--workdir", work, "--listen", "unix:"+sock)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer stopServer(t, first, first.Process)
	if got := readGreeting(t, dialRetry(t, sock)); got != "hello\n" {
		t.Fatalf("first server reads %q", got)
	}
	inflight := filepath.Join(work, "work", "#2a")
	if err := os.WriteFile(inflight, []byte("copy in flight"), 0o600); err != nil {
		t.Fatal(err)
	}
	second := union9p("serve", "-o", "lowerdir="+lower+",upperdir="+upper+",workdir="+work,
		"--listen", "unix:"+filepath.Join(t.TempDir(), "s2"))
	var stderr bytes.Buffer
	second.Stderr = &stderr
	err := second.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitFailure {
		t.Fatalf("second serve: %v (want exit %d)\n%s", err, exitFailure, stderr.String())
	}
	want := "in use by another union9p (pid " + strconv.Itoa(first.Process.Pid) + ")"
	if !strings.Contains(stderr.String(), want) {
		t.Fatalf("second serve says %q, want it to contain %q", stderr.String(), want)
	}
	if _, err := os.Stat(inflight); err != nil {
		t.Fatalf("the refused server cleaned the first one's work directory: %v", err)
	}
	if got := readGreeting(t, dialRetry(t, sock)); got != "hello\n" {
		t.Fatalf("first server reads %q after the refusal", got)
	}
}
