package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/union9p/union9p/test/p9wire"
	"github.com/union9p/union9p/union/tenant"
	"golang.org/x/sys/unix"
)

// tenantsSetup is a running `serve --tenants` with tenant a on a.sock,
// tenant b on b.sock, a trusted listener any.sock, and a control socket.
type tenantsSetup struct {
	lower, dir            string
	aSock, bSock, anySock string
	ctl                   string
	stderr                *bytes.Buffer
}

func startTenantsServer(t *testing.T) *tenantsSetup {
	t.Helper()
	return startTenantsServerWith(t, nil, nil)
}

// startTenantsServerWith is startTenantsServer with more lower files
// (name: content) and more serve flags.
func startTenantsServerWith(t *testing.T, lowerFiles map[string]string, flags []string) *tenantsSetup {
	t.Helper()
	base := t.TempDir()
	s := &tenantsSetup{lower: filepath.Join(base, "lower"), dir: filepath.Join(base, "tenants"),
		aSock: filepath.Join(base, "a.sock"), bSock: filepath.Join(base, "b.sock"),
		anySock: filepath.Join(base, "any.sock"), ctl: filepath.Join(base, "ctl.sock"), stderr: new(bytes.Buffer)}
	if err := os.MkdirAll(filepath.Join(s.lower, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"greeting": "hello\n", "d/f": "base\n"}
	for name, data := range lowerFiles {
		files[name] = data
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(s.lower, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := union9p("serve", "--lower", s.lower, "--tenants", s.dir, "--control", s.ctl,
		"--listen", "unix:"+s.aSock+",tenant=a", "--listen", "unix:"+s.bSock+",tenant=b",
		"--listen", "unix:"+s.anySock+",tenant=*")
	cmd.Args = append(cmd.Args, flags...)
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopServer(t, cmd, cmd.Process)
		if strings.Contains(s.stderr.String(), "DATA RACE") { // under go test -race
			t.Error("the server reported a data race")
		}
		if t.Failed() {
			t.Logf("server stderr:\n%s", s.stderr)
		}
	})
	return s
}

// attachRoot dials sock and attaches fid 0 with aname.
func attachRoot(t *testing.T, sock, aname string) *p9wire.Client {
	t.Helper()
	c := dialRetry(t, sock)
	if _, err := c.Attach(0, "root", aname, 0); err != nil {
		t.Fatalf("attach %s aname %q: %v", sock, aname, err)
	}
	return c
}

// readFile reads the file at path from the root fid 0, through fid 99.
func readFile(c *p9wire.Client, path ...string) (string, error) {
	if _, err := c.Walk(0, 99, path...); err != nil {
		return "", err
	}
	defer c.Clunk(99)
	if _, _, err := c.Lopen(99, p9wire.ORdonly); err != nil {
		return "", err
	}
	data, err := c.Read(99, 0, 4096)
	return string(data), err
}

// writeFile creates or truncates root/name through fid 98 and writes data.
func writeFile(t *testing.T, c *p9wire.Client, data string, path ...string) {
	t.Helper()
	if _, err := c.Walk(0, 98, path...); err == nil {
		if _, _, err := c.Lopen(98, p9wire.OWronly|p9wire.OTrunc); err != nil {
			t.Fatalf("open %v: %v", path, err)
		}
	} else {
		if _, err := c.Walk(0, 98, path[:len(path)-1]...); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Lcreate(98, path[len(path)-1], p9wire.OWronly, 0o644, 0); err != nil {
			t.Fatalf("create %v: %v", path, err)
		}
	}
	if _, err := c.Write(98, 0, []byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := c.Clunk(98); err != nil {
		t.Fatal(err)
	}
}

func wantErrno(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got %v, want %v", what, err, want)
	}
}

func TestServeTenantsIsolation(t *testing.T) {
	s := startTenantsServer(t)
	ca := attachRoot(t, s.aSock, "")
	cb := attachRoot(t, s.bSock, "")
	for _, sock := range []string{s.aSock, s.bSock, s.anySock, s.ctl} {
		if fi, err := os.Lstat(sock); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("socket %s: %v %v, want owner-only (0600)", sock, fi.Mode(), err)
		}
	}

	// Tenant a: a new file, a whiteout, a copy-up, and symlinks that
	// point out of its union.
	writeFile(t, ca, "from a\n", "newA")
	if err := ca.Unlinkat(0, "greeting", 0); err != nil {
		t.Fatal(err)
	}
	writeFile(t, ca, "changed by a\n", "d", "f")
	writeFile(t, cb, "from b\n", "newB")
	for name, target := range map[string]string{"up3": "../../..", "tb": "../../b", "abs": s.dir, "bup": filepath.Join(s.dir, "b", "upper")} {
		if _, err := ca.Symlink(0, name, target, 0); err != nil {
			t.Fatal(err)
		}
	}

	// Tenant b sees none of it.
	if got, err := readFile(cb, "greeting"); err != nil || got != "hello\n" {
		t.Errorf("b reads greeting = %q, %v; want the base's", got, err)
	}
	if got, err := readFile(cb, "d", "f"); err != nil || got != "base\n" {
		t.Errorf("b reads d/f = %q, %v; want the base's", got, err)
	}
	_, err := cb.Walk(0, 1, "newA")
	wantErrno(t, "b walks to a's new file", err, unix.ENOENT)
	// And a sees its own changes, not b's.
	if got, err := readFile(ca, "d", "f"); err != nil || got != "changed by a\n" {
		t.Errorf("a reads d/f = %q, %v", got, err)
	}
	_, err = ca.Walk(0, 1, "greeting")
	wantErrno(t, "a walks to its whiteout", err, unix.ENOENT)
	_, err = ca.Walk(0, 1, "newB")
	wantErrno(t, "a walks to b's new file", err, unix.ENOENT)

	// ".." is refused outright (the Linux client resolves it itself), at
	// the root as anywhere.
	for _, path := range [][]string{{".."}, {"..", ".."}} {
		_, err := ca.Walk(0, 2, path...)
		wantErrno(t, "a walks "+strings.Join(path, "/"), err, unix.EINVAL)
	}
	// Below the root, the walk stops before the "..": a partial walk.
	if qids, err := ca.Walk(0, 2, "d", "..", ".."); err == nil || len(qids) != 1 {
		t.Errorf("a walks d/../..: %v %v, want only d walked", qids, err)
	}
	for _, path := range [][]string{{"..", "b"}, {"..", "..", "b", "upper", "newB"}, {"..", "a", "upper"},
		{"tb", "upper"}, {"up3", "tenants"}, {"abs", "b"}, {"bup", "newB"}} {
		if _, err := ca.Walk(0, 3, path...); err == nil {
			t.Errorf("a walks %v: reached something", path)
			ca.Clunk(3)
		}
	}
	// The aname on a tenant's own listener selects nothing: every
	// attach is a's root.
	for i, aname := range []string{"b", "../b", "/", "..", s.dir, "b/upper", "*"} {
		fid := uint32(10 + i)
		if _, err := ca.Attach(fid, "root", aname, 0); err != nil {
			t.Errorf("a attaches with aname %q: %v", aname, err)
			continue
		}
		if _, err := ca.Walk(fid, 50, "newA"); err != nil {
			t.Errorf("attach with aname %q on a's listener is not a's root: %v", aname, err)
		} else {
			ca.Clunk(50)
		}
		if _, err := ca.Walk(fid, 50, "newB"); err == nil {
			t.Errorf("attach with aname %q on a's listener reaches b", aname)
		}
	}

	// On the trusted listener the aname chooses among existing tenants.
	cx := dialRetry(t, s.anySock)
	for aname, want := range map[string]unix.Errno{"": unix.EINVAL, "../a": unix.EINVAL, "a/upper": unix.EINVAL,
		".": unix.EINVAL, "*": unix.EINVAL, "nosuch": unix.ENOENT, strings.Repeat("x", 256): unix.EINVAL} {
		_, err := cx.Attach(0, "root", aname, 0)
		wantErrno(t, "trusted attach aname "+aname[:min(len(aname), 20)], err, want)
	}
	if _, err := cx.Attach(0, "root", "b", 0); err != nil {
		t.Fatalf("trusted attach to b: %v", err)
	}
	if got, err := readFile(cx, "newB"); err != nil || got != "from b\n" {
		t.Errorf("trusted client of b reads newB = %q, %v", got, err)
	}
	_, err = cx.Walk(0, 1, "newA")
	wantErrno(t, "trusted client of b walks to a's file", err, unix.ENOENT)

	// On the host: a's changes are in a's upper only; the lower is as it was.
	if _, err := os.Stat(filepath.Join(s.dir, "a", "upper", "newA")); err != nil {
		t.Error(err)
	}
	if _, err := os.Lstat(filepath.Join(s.dir, "b", "upper", "newA")); err == nil {
		t.Error("a's file is in b's upper")
	}
	if data, _ := os.ReadFile(filepath.Join(s.lower, "d", "f")); string(data) != "base\n" {
		t.Errorf("lower d/f = %q", data)
	}
	if _, err := os.Stat(filepath.Join(s.lower, "greeting")); err != nil {
		t.Error(err)
	}
}

// tenantInfo returns the tenant's entry in `union9p tenant list --json`.
func tenantInfo(t *testing.T, ctl, name string) tenant.Info {
	t.Helper()
	out, errOut, code := runTenant(t, ctl, "list", "--json")
	if code != 0 {
		t.Fatalf("tenant list: exit %d: %s", code, errOut)
	}
	var list []tenant.Info
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("tenant list --json: %v\n%s", err, out)
	}
	for _, in := range list {
		if in.Name == name {
			return in
		}
	}
	t.Fatalf("tenant list has no %s:\n%s", name, out)
	return tenant.Info{}
}

func TestServeTenantsResetEndsConnections(t *testing.T) {
	s := startTenantsServer(t)
	ca := attachRoot(t, s.aSock, "")
	cb := attachRoot(t, s.bSock, "")
	writeFile(t, ca, "from a\n", "newA")
	if err := ca.Unlinkat(0, "greeting", 0); err != nil {
		t.Fatal(err)
	}
	writeFile(t, cb, "from b\n", "newB")
	if n := tenantInfo(t, s.ctl, "a").Connections; n != 1 {
		t.Errorf("tenant list: a has %d connections, want 1", n)
	}
	out, _, code := runTenant(t, s.ctl, "list")
	if code != 0 || !strings.Contains(out, "CONNECTIONS") {
		t.Errorf("tenant list: exit %d:\n%s", code, out)
	}

	// Reset with a's client attached: it returns once the client is gone.
	if out, errOut, code := runTenant(t, s.ctl, "reset", "a"); code != 0 {
		t.Fatalf("tenant reset a: exit %d: %s %s", code, out, errOut)
	}
	_, err := ca.Walk(0, 1, "newA")
	var errno unix.Errno
	if err == nil || errors.As(err, &errno) {
		t.Errorf("a's old connection after the reset: walk gave %v, want the connection closed", err)
	}
	// The next attach sees the pristine base; b is untouched.
	ca2 := attachRoot(t, s.aSock, "")
	_, err = ca2.Walk(0, 1, "newA")
	wantErrno(t, "a after reset walks to its old file", err, unix.ENOENT)
	if got, err := readFile(ca2, "greeting"); err != nil || got != "hello\n" {
		t.Errorf("a after reset reads greeting = %q, %v", got, err)
	}
	if got, err := readFile(cb, "newB"); err != nil || got != "from b\n" {
		t.Errorf("b after a's reset reads newB = %q, %v", got, err)
	}
	ents, err := os.ReadDir(filepath.Join(s.dir, "a", "upper"))
	if err != nil || len(ents) != 0 {
		t.Errorf("a's upper after reset: %v %v", ents, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for tenantInfo(t, s.ctl, "a").Connections != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := tenantInfo(t, s.ctl, "a").Connections; n != 1 {
		t.Errorf("after reset, a has %d connections, want 1 (the new one)", n)
	}

	// Remove ends the trusted listener's connections of the tenant too,
	// and later attaches by aname find no such tenant.
	cx := attachRoot(t, s.anySock, "b")
	if _, _, code := runTenant(t, s.ctl, "remove", "b"); code != 0 {
		t.Fatal("tenant remove b failed")
	}
	if _, err := cx.Walk(0, 1, "newB"); err == nil || errors.As(err, &errno) {
		t.Errorf("trusted client of b after remove: %v, want the connection closed", err)
	}
	cy := dialRetry(t, s.anySock)
	_, err = cy.Attach(0, "root", "b", 0)
	wantErrno(t, "attach to removed b", err, unix.ENOENT)
}

func TestServeTenantsRefusesBadListeners(t *testing.T) {
	base := t.TempDir()
	lower := filepath.Join(base, "lower")
	if err := os.Mkdir(lower, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "tenants")
	sock := "unix:" + filepath.Join(base, "s")
	common := []string{"--lower", lower, "--tenants", dir, "--control", filepath.Join(base, "ctl")}
	tests := []struct {
		name     string
		args     []string
		mentions string
	}{
		{"dotdot", []string{"--listen", sock + ",tenant=.."}, "bad tenant name"},
		{"empty", []string{"--listen", sock + ",tenant="}, "bad tenant name: empty"},
		{"slash", []string{"--listen", sock + ",tenant=a/b"}, "bad tenant name"},
		{"too long", []string{"--listen", sock + ",tenant=" + strings.Repeat("n", 256)}, "at most 255"},
		{"hidden", []string{"--listen", sock + ",tenant=.x"}, "bad tenant name"},
		{"no tenant", []string{"--listen", sock}, "every listener names its tenant"},
		{"stdio", []string{"--listen", "stdio,tenant=a"}, "stdio"},
		{"upper too", []string{"--upper", filepath.Join(base, "u"), "--listen", sock + ",tenant=a"}, "drop --upper"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cmd := union9p(append(append([]string{"serve"}, common...), tc.args...)...)
			cmd.Stderr = &stderr
			err := cmd.Run()
			if code := cmd.ProcessState.ExitCode(); err == nil || code != exitUsage {
				t.Errorf("exit %d (%v), want %d; stderr: %s", code, err, exitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.mentions) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tc.mentions)
			}
			if _, err := os.Lstat(dir); err == nil {
				t.Error("the tenants directory was made by a refused start")
			}
		})
	}
	// A tenant listener without --tenants.
	var stderr bytes.Buffer
	cmd := union9p("serve", "--lower", lower, "--upper", filepath.Join(base, "u"), "--workdir", filepath.Join(base, "w"),
		"--listen", sock+",tenant=a")
	cmd.Stderr = &stderr
	if cmd.Run() == nil || !strings.Contains(stderr.String(), "needs --tenants") {
		t.Errorf("tenant listener without --tenants: %s", stderr.String())
	}
}
