package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/union9p/union9p/p9srv/control"
	"github.com/union9p/union9p/union/tenant"
)

// tenantServer runs a control server over a real registry in this process
// (the 9P side is not wired yet: no connections to close) and returns its
// socket and tenants directory.
func tenantServer(t *testing.T) (sock, dir string, reg *tenant.Registry, conns *fakeConns) {
	t.Helper()
	base := t.TempDir()
	lower := filepath.Join(base, "lower")
	if err := os.MkdirAll(lower, 0o755); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(base, "tenants")
	reg, err := tenant.Open(tenant.Config{Dir: dir, Lowers: []string{lower}, DefaultQuota: tenant.Quota{Bytes: 10 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	sock = filepath.Join(base, "control.sock")
	l, err := control.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	conns = &fakeConns{}
	srv := &control.Server{Tenants: reg, Conns: conns, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close(); reg.Close() })
	return sock, dir, reg, conns
}

// fakeConns stands for the 9P server: closing a tenant's connections
// releases the Handle it holds for it.
type fakeConns struct {
	mu      sync.Mutex
	held    *tenant.Handle
	evicted string
}

func (f *fakeConns) hold(h *tenant.Handle) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = h
}

func (f *fakeConns) CloseTenant(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.evicted = name
	if f.held != nil && f.held.Name() == name {
		f.held.Release()
		f.held = nil
	}
}

// runTenant runs `union9p tenant ARGS...` with the control socket in the
// environment and returns stdout, stderr and the exit code.
func runTenant(t *testing.T, sock string, args ...string) (string, string, int) {
	t.Helper()
	cmd := union9p(append([]string{"tenant"}, args...)...)
	cmd.Env = append(cmd.Env, "UNION9P_CONTROL="+sock)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if err != nil {
		code = cmd.ProcessState.ExitCode()
		if code < 0 {
			t.Fatalf("union9p tenant %v: %v", args, err)
		}
	}
	return out.String(), errOut.String(), code
}

func TestTenantCommandsEndToEnd(t *testing.T) {
	sock, dir, reg, conns := tenantServer(t)
	ok := func(args ...string) string {
		t.Helper()
		out, errOut, code := runTenant(t, sock, args...)
		if code != 0 {
			t.Fatalf("union9p tenant %v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	if out := ok("list"); strings.TrimSpace(out) != "no tenants" {
		t.Fatalf("list of none: %q", out)
	}
	if out := ok("add", "guest1"); out != "tenant guest1 added\n" {
		t.Fatalf("add: %q", out)
	}
	ok("add", "guest2")
	if _, err := os.Stat(filepath.Join(dir, "guest1", "upper")); err != nil {
		t.Fatalf("add made no upper: %v", err)
	}
	if out := ok("quota", "--bytes", "1G", "--inodes", "5000", "guest1"); !strings.Contains(out, "quota 1.0 GiB, 5000 inodes (its own)") {
		t.Fatalf("quota set: %q", out)
	}
	// A limit not given keeps its value.
	if out := ok("quota", "--inodes", "unlimited", "guest1"); !strings.Contains(out, "quota 1.0 GiB, unlimited inodes") {
		t.Fatalf("quota inodes only: %q", out)
	}

	out := ok("list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("table: %q", out)
	}
	for _, want := range [][]string{
		{"guest1", "1.0 GiB", "unlimited", "tenant", "0", "ready"},
		{"guest2", "10.0 GiB", "default"},
	} {
		row := strings.Join(strings.Fields(lines[map[string]int{"guest1": 1, "guest2": 2}[want[0]]]), " ")
		for _, w := range want {
			if !strings.Contains(row, w) {
				t.Errorf("row %q lacks %q", row, w)
			}
		}
	}

	var list []tenant.Info
	if err := json.Unmarshal([]byte(ok("list", "--json")), &list); err != nil {
		t.Fatalf("list --json: %v", err)
	}
	if len(list) != 2 || list[0].Name != "guest1" || list[0].Quota != (tenant.Quota{Bytes: 1 << 30}) || !list[0].OwnQuota || list[0].Usage.Inodes != 1 {
		t.Fatalf("list --json: %+v", list)
	}

	// Reset a tenant that has data and a connection: the connection
	// (a Handle held by the fake 9P side) is closed first.
	h, err := reg.Acquire(context.Background(), "guest1")
	if err != nil {
		t.Fatal(err)
	}
	conns.hold(h)
	if in := reg.List()[0]; in.Connections != 1 {
		t.Fatalf("connections: %+v", in)
	}
	if out := ok("list"); !strings.Contains(strings.Join(strings.Fields(out), " "), "tenant 1 ready") {
		t.Fatalf("list does not show the connection: %q", out)
	}
	if err := os.WriteFile(filepath.Join(dir, "guest1", "upper", "scratch"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := ok("reset", "guest1"); out != "tenant guest1 reset\n" {
		t.Fatalf("reset: %q", out)
	}
	if conns.evicted != "guest1" {
		t.Fatalf("the server was asked to close %q's connections, want guest1", conns.evicted)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "guest1", "upper")); len(ents) != 0 {
		t.Fatalf("upper after reset: %v", ents)
	}
	ok("quota", "--default", "guest1")
	if q := reg.List()[0]; q.OwnQuota || q.Quota.Bytes != 10<<30 {
		t.Fatalf("after --default: %+v", q)
	}
	ok("remove", "guest2")
	if _, err := os.Stat(filepath.Join(dir, "guest2")); !os.IsNotExist(err) {
		t.Fatalf("guest2 after remove: %v", err)
	}
	var one tenant.Info
	if err := json.Unmarshal([]byte(ok("quota", "--json", "guest1")), &one); err != nil || one.Name != "guest1" {
		t.Fatalf("quota --json: %+v %v", one, err)
	}
}

func TestTenantCommandErrors(t *testing.T) {
	sock, _, _, _ := tenantServer(t)
	if _, _, code := runTenant(t, sock, "add", "a"); code != 0 {
		t.Fatal("add a failed")
	}
	tests := []struct {
		name     string
		sock     string
		args     []string
		code     int
		mentions string
	}{
		{"server not running", filepath.Join(t.TempDir(), "none.sock"), []string{"list"}, 1, "no server is running"},
		{"unknown tenant", sock, []string{"reset", "nobody"}, 1, "no such tenant"},
		{"unknown tenant quota", sock, []string{"quota", "--bytes", "1G", "nobody"}, 1, "no such tenant"},
		{"exists", sock, []string{"add", "a"}, 1, "exists"},
		{"bad name dotdot", sock, []string{"add", ".."}, 2, "bad tenant name"},
		{"bad name slash", sock, []string{"remove", "a/b"}, 2, "bad tenant name"},
		{"bad name long", sock, []string{"add", strings.Repeat("n", 256)}, 2, "at most 255"},
		{"bad name, no server", filepath.Join(t.TempDir(), "none.sock"), []string{"add", "a/b"}, 2, "bad tenant name"},
		{"no name", sock, []string{"reset"}, 2, "want one tenant NAME"},
		{"flag after name", sock, []string{"quota", "a", "--bytes", "1G"}, 2, "flags go before NAME"},
		{"bad size", sock, []string{"quota", "--bytes", "ten", "a"}, 2, "--bytes"},
		{"default with bytes", sock, []string{"quota", "--default", "--bytes", "1G", "a"}, 2, "--default"},
		{"list with args", sock, []string{"list", "a"}, 2, "no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runTenant(t, tt.sock, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.mentions) {
				t.Fatalf("exit %d, stderr %q; want exit %d mentioning %q", code, errOut, tt.code, tt.mentions)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "unlimited": 0, "1048576": 1 << 20, "512K": 512 << 10, "10G": 10 << 30,
		"10GiB": 10 << 30, "3m": 3 << 20, "1T": 1 << 40, "2GB": 2 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "ten", "1X", "1.5G", "9999999999E", "G"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}
