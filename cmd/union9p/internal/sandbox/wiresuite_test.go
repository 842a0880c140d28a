package sandbox_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWireSuiteConfined runs the whole p9srv test suite (the wire suite:
// a real server on a unix socket driven by test/p9wire) inside the
// server's sandbox: capabilities cut to the root set, no_new_privs,
// Landlock to its temporary directory, and the server's seccomp list plus
// only what a test binary needs to start and to make its own sockets
// (harnessSyscalls in probe_on.go). Every system call the server's code
// makes in the suite must be on the list.
func TestWireSuiteConfined(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the p9srv suite")
	}
	probe := buildProbe(t)
	// The module root: tests run in their package's directory.
	repo, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(repo, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	bindir := t.TempDir()
	suite := filepath.Join(bindir, "p9srv.test")
	build := exec.Command("go", "test", "-c", "-o", suite, "./p9srv")
	build.Dir = repo
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c ./p9srv: %v\n%s", err, out)
	}
	// A short TMPDIR: the suite's socket paths must fit in sun_path.
	tmp, err := os.MkdirTemp("", "ws")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	pkg := filepath.Join(repo, "p9srv")
	cmd := exec.Command(probe, "--", "-test.count=1", "-test.v")
	cmd.Dir = pkg // testdata, as go test runs it
	cmd.Env = []string{"PATH=/usr/bin:/bin", "TMPDIR=" + tmp, "UNION9P_SANDBOX_EXEC=" + suite,
		"UNION9P_SANDBOX_EXEC_WRITE=" + tmp, "UNION9P_SANDBOX_EXEC_READ=" + pkg + ":/proc"} // the suite counts its fds in /proc/self/fd
	out, err := cmd.CombinedOutput()
	text := string(out)
	if !strings.Contains(text, `applied="capabilities,no_new_privs,landlock`) {
		t.Fatalf("the suite did not run confined:\n%s", text)
	}
	if err != nil || !strings.HasSuffix(strings.TrimSpace(text), "PASS") {
		var fails []string
		for _, l := range strings.Split(text, "\n") {
			if strings.Contains(l, "--- FAIL") || strings.Contains(l, "operation not permitted") || strings.Contains(l, "permission denied") {
				fails = append(fails, l)
			}
		}
		t.Fatalf("p9srv suite under the sandbox: %v\n%s\n(last output:)\n%s", err, strings.Join(fails, "\n"), tail(text, 3000))
	}
	t.Logf("p9srv suite passed confined: %d tests", strings.Count(text, "--- PASS"))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
