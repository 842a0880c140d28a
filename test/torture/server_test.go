package torture

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/union9p/union9p/test/internal/vmhost"
)

// buildServer builds union9p as `make build` does (no cgo: full sandbox).
func buildServer(t *testing.T) string {
	t.Helper()
	repo, err := vmhost.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "union9p")
	if err := vmhost.GoBuild(context.Background(), repo, "./cmd/union9p", bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// server is one running `union9p serve` over the torture layers.
type server struct {
	cmd  *exec.Cmd
	sock string
	log  *os.File
}

// startServer starts the server and waits until its socket answers.
func startServer(bin string, l *layers, logPath string) (*server, error) {
	sock := filepath.Join(l.root, "sock")
	os.Remove(sock)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--lower", l.lowerTop, "--lower", l.lowerBottom,
		"--upper", l.upper, "--workdir", l.work, "--listen", "unix:"+sock)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	s := &server{cmd: cmd, sock: sock, log: logf}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("server did not answer on %s within 10 s (log %s)", sock, logPath)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// kill ends the server with SIGKILL and reaps it.
func (s *server) kill() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.log.Close()
}
