package sandbox_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/union9p/union9p/test/p9wire"
	"golang.org/x/sys/unix"
)

// buildProbe builds union9p without cgo (as `make build` does) and with the
// test-only probe hook.
func buildProbe(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the confinement tests run as root (capabilities are part of what is checked)")
	}
	bin := filepath.Join(t.TempDir(), "union9p-probe")
	cmd := exec.Command("go", "build", "-tags", "sandboxprobe", "-o", bin, "github.com/union9p/union9p/cmd/union9p")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// layers makes lower/upper/work under a fresh directory, and a secret file
// beside them (outside every layer).
func layers(t *testing.T) (dir, secret string) {
	t.Helper()
	dir = t.TempDir()
	for _, d := range []string{"lower", "upper", "work"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "lower", "f"), []byte("lower data"), 0o644); err != nil {
		t.Fatal(err)
	}
	secret = filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, secret
}

// startServer runs `serve` with the probe armed and returns the probe's
// lines once it has printed them, with the process (still serving unless
// the execve worked).
func startServer(t *testing.T, bin, dir, secret string, extra ...string) (map[string]string, *exec.Cmd, string) {
	t.Helper()
	sock := filepath.Join(dir, "sock")
	args := append([]string{"serve", "--lower", filepath.Join(dir, "lower"), "--upper", filepath.Join(dir, "upper"),
		"--workdir", filepath.Join(dir, "work"), "--listen", "unix:" + sock}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"UNION9P_SANDBOX_PROBE_PATH=" + secret, "PATH=/usr/bin:/bin"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	probe := map[string]string{}
	var log bytes.Buffer
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		log.WriteString(line + "\n")
		if what, res, ok := strings.Cut(strings.TrimPrefix(line, "sandbox-probe "), ": "); ok && strings.HasPrefix(line, "sandbox-probe ") {
			probe[what] = res
			if what == "execve" && res != "trying" {
				break
			}
		}
		if strings.Contains(line, "msg=serving") {
			break
		}
	}
	go func() { // keep draining so the server never blocks on stderr
		for sc.Scan() {
		}
	}()
	return probe, cmd, log.String()
}

// TestConfinement: with the sandbox on, the server itself cannot open a
// host file outside its layers, make a socket or execve, and the kernel is
// what refuses (EACCES from Landlock, EPERM from seccomp); it still serves
// its union, copy-up included. With --sandbox=off the same probe succeeds,
// so the test can tell the difference.
func TestConfinement(t *testing.T) {
	bin := buildProbe(t)

	t.Run("on", func(t *testing.T) {
		dir, secret := layers(t)
		probe, cmd, log := startServer(t, bin, dir, secret)
		want := map[string]string{
			"open":        unix.EACCES.Error(),
			"open-write":  unix.EACCES.Error(),
			"socket-tcp":  unix.EPERM.Error(),
			"socket-unix": unix.EPERM.Error(),
			"execve":      unix.EPERM.Error(),
		}
		for what, res := range want {
			if probe[what] != res {
				t.Errorf("probe %s: got %q, want %q (refused by the kernel)\n%s", what, probe[what], res, log)
			}
		}
		if !strings.Contains(log, `applied="capabilities,no_new_privs,landlock`) || !strings.Contains(log, ",seccomp\"") {
			t.Errorf("sandbox not fully applied on this kernel:\n%s", log)
		}
		checkServes(t, filepath.Join(dir, "sock"), dir)
		checkCapabilities(t, cmd.Process.Pid)
	})

	t.Run("off", func(t *testing.T) {
		dir, secret := layers(t)
		probe, cmd, log := startServer(t, bin, dir, secret, "--sandbox=off")
		for _, what := range []string{"open", "open-write", "socket-tcp", "socket-unix"} {
			if probe[what] != "ok" {
				t.Errorf("probe %s without sandbox: got %q, want ok\n%s", what, probe[what], log)
			}
		}
		// The execve worked: the server became /bin/true and exited 0.
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("after execve /bin/true: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("execve without sandbox did not replace the server\n%s", log)
		}
	})
}

// checkServes copies a lower file up through the confined server and reads
// it back, then checks the upper on the host.
func checkServes(t *testing.T, sock, dir string) {
	t.Helper()
	c, err := p9wire.Dial("unix", sock, 65536)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Attach(0, "root", "", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Walk(0, 1, "f"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Lopen(1, unix.O_RDWR); err != nil {
		t.Fatalf("open for write (copy-up) under the sandbox: %v", err)
	}
	if _, err := c.Write(1, 0, []byte("UPPER")); err != nil {
		t.Fatal(err)
	}
	if err := c.Fsync(1, false); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "upper", "f"))
	if err != nil || string(got) != "UPPER data" {
		t.Fatalf("upper/f after copy-up and write: %q, %v", got, err)
	}
	if lower, _ := os.ReadFile(filepath.Join(dir, "lower", "f")); string(lower) != "lower data" {
		t.Fatalf("lower changed: %q", lower)
	}
}

// checkCapabilities: a root server keeps CHOWN, DAC_OVERRIDE,
// DAC_READ_SEARCH, FOWNER, FSETID, SYS_ADMIN, MKNOD and SETFCAP in every
// set, in every thread, and nothing else.
func checkCapabilities(t *testing.T, pid int) {
	t.Helper()
	const want = "000000008820001f"
	tasks, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "status"))
	if err != nil || len(tasks) < 2 {
		t.Fatalf("threads of the server: %v, %v", tasks, err)
	}
	for _, status := range tasks {
		b, err := os.ReadFile(status)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			for _, set := range []string{"CapPrm:", "CapEff:", "CapBnd:", "CapInh:", "CapAmb:", "NoNewPrivs:", "Seccomp:"} {
				if !strings.HasPrefix(line, set) {
					continue
				}
				got := strings.TrimSpace(strings.TrimPrefix(line, set))
				exp := want
				switch set {
				case "CapInh:", "CapAmb:":
					exp = "0000000000000000"
				case "NoNewPrivs:":
					exp = "1"
				case "Seccomp:":
					exp = "2"
				}
				if got != exp {
					t.Errorf("%s %s %s, want %s", status, set, got, exp)
				}
			}
		}
	}
}
