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

// Every tool that writes the layers is refused while a server serves them,
// naming the server's pid, and changes nothing.
func TestToolsRefuseLayersInUse(t *testing.T) {
	lower, upper, work := layers(t)
	if err := os.WriteFile(filepath.Join(upper, "mine"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "s")
	srv := union9p("serve", "--lower", lower, "--upper", upper, "--workdir", work, "--listen", "unix:"+sock)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer stopServer(t, srv, srv.Process)
	dialRetry(t, sock)
	dest := filepath.Join(t.TempDir(), "dest")
	layerArgs := []string{"--lower", lower, "--upper", upper, "--workdir", work}
	for _, args := range [][]string{
		append([]string{"reset"}, layerArgs...),
		append([]string{"vacuum"}, layerArgs...),
		append([]string{"merge", "--in-place"}, layerArgs...),
		append([]string{"merge"}, append(layerArgs, dest)...),
		{"import", "/dev/null", upper},
	} {
		t.Run(args[0], func(t *testing.T) {
			cmd := union9p(args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != exitFailure {
				t.Fatalf("%v: %v (want exit %d)\n%s", args, err, exitFailure, stderr.String())
			}
			want := "in use by another union9p (pid " + strconv.Itoa(srv.Process.Pid) + ")"
			if !strings.Contains(stderr.String(), want) {
				t.Fatalf("%v says %q, want %q", args, stderr.String(), want)
			}
			if _, err := os.Stat(filepath.Join(upper, "mine")); err != nil {
				t.Fatalf("the upper changed: %v", err)
			}
			if _, err := os.Stat(dest); err == nil {
				t.Fatal("merge made its destination before it found the layers in use")
			}
		})
	}
}
