package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/union9p/union9p/test/p9wire"
)

// server is a 9P2000.L server process under test, listening on a unix
// socket.
type server struct {
	Name  string
	Sock  string
	Aname string // what Tattach asks for: diod wants the export path
	cmd   *exec.Cmd
	exit  chan error // receives the process's exit once
	log   *os.File
	stop  func() error
}

// Pid returns the server's process id (for strace).
func (s *server) Pid() int { return s.cmd.Process.Pid }

// pid is Pid, or 0 for a server in this process (bench_test.go).
func (s *server) pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// dial opens a connection, negotiates msize and attaches as root (uid 0,
// passed as n_uname as the kernel does) with the root directory as fid 0.
func (s *server) dial(msize uint32) (*p9wire.Client, error) {
	c, err := p9wire.Dial("unix", s.Sock, msize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	if _, err := c.Attach(rootFid, "root", s.Aname, 0); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: attach: %w", s.Name, err)
	}
	return c, nil
}

// startUnion9p runs `union9p serve` on st, listening on a socket in dir.
func startUnion9p(ctx context.Context, cl *cleanups, name, binary string, st stack, dir string) (*server, error) {
	sock := filepath.Join(dir, name+".sock")
	args := []string{"serve"}
	for _, l := range st.Lowers {
		args = append(args, "--lower", l)
	}
	args = append(args, "--upper", st.Upper, "--workdir", st.Work, "--listen", "unix:"+sock)
	return startServer(ctx, cl, name, sock, "", dir, binary, args...)
}

// startDiod runs diod exporting export, listening on a socket in dir:
//
//	-f        foreground, logs to stderr
//	-n        no authentication (Tauth is not needed to attach)
//	-N        no password-file lookups: any numeric uid attaches as itself
//	-c /dev/null  ignore /etc/diod.conf
//	-e DIR    the export; clients attach with aname DIR
//	-l SOCK   listen on a unix socket
//	-L stderr
//
// diod serves with its default 16 worker threads per export.
func startDiod(ctx context.Context, cl *cleanups, export, dir string) (*server, error) {
	sock := filepath.Join(dir, "diod.sock")
	return startServer(ctx, cl, "diod", sock, export, dir, "diod",
		"-f", "-n", "-N", "-c", "/dev/null", "-e", export, "-l", sock, "-L", "stderr")
}

// startServer starts a server process whose stdout and stderr go to a log
// file in dir and waits until its socket accepts a 9P session.
func startServer(ctx context.Context, cl *cleanups, name, sock, aname, dir, path string, args ...string) (*server, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{Name: name, Sock: sock, Aname: aname, cmd: cmd, exit: make(chan error, 1), log: logf}
	go func() { s.exit <- cmd.Wait() }()
	s.stop = cl.add("stop "+name, s.terminate)
	if err := s.waitReady(ctx, 10*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// terminate stops the server with SIGTERM, then SIGKILL after two seconds.
func (s *server) terminate() error {
	defer s.log.Close()
	defer os.Remove(s.Sock)
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exit:
		return nil
	case <-time.After(2 * time.Second):
	}
	s.cmd.Process.Kill()
	<-s.exit
	return nil
}

// waitReady polls until a session can be established.
func (s *server) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := s.dial(8192)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case werr := <-s.exit:
			s.exit <- werr
			return fmt.Errorf("%s exited during startup (%v); log: %s", s.Name, werr, s.tailLog())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %v; log: %s", s.Name, limit, err, s.tailLog())
		}
	}
}

// tailLog returns the end of the server's log, for error messages.
func (s *server) tailLog() string {
	b, err := os.ReadFile(s.log.Name())
	if err != nil {
		return err.Error()
	}
	t := strings.TrimSpace(string(b))
	if len(t) > 800 {
		t = "..." + t[len(t)-800:]
	}
	if t == "" {
		return "(empty)"
	}
	return t
}

// buildUnion9p builds cmd/union9p into dir and returns the binary's path.
// The bench runs from the module (go run ./test/bench), so the go tool and
// the source are at hand.
func buildUnion9p(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "union9p")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/union9p/union9p/cmd/union9p")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/union9p: %v\n%s", err, msg)
	}
	return out, nil
}
