package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/union9p/union9p/union/tenant"
	"golang.org/x/sys/unix"
)

// TestMain lets a test run this binary as a control client under another
// uid (TestPeerOfAnotherUserDenied).
func TestMain(m *testing.M) {
	if path := os.Getenv("UNION9P_CONTROL_TEST_DIAL"); path != "" {
		c, err := Dial(path)
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(3)
		}
		_, err = c.List()
		var e *Error
		if errors.As(err, &e) {
			fmt.Println(e.Code)
		} else {
			fmt.Println("answer:", err)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakeConns stands for p9srv: it records evictions and releases the
// tenant's Handles it was given, as closing their connections would.
type fakeConns struct {
	mu      sync.Mutex
	handles map[string][]*tenant.Handle
	evicted []string
	stuck   bool // a server that fails to close its connections
}

func (f *fakeConns) hold(h *tenant.Handle) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.handles == nil {
		f.handles = map[string][]*tenant.Handle{}
	}
	f.handles[h.Name()] = append(f.handles[h.Name()], h)
}

func (f *fakeConns) CloseTenant(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.evicted = append(f.evicted, name)
	if f.stuck {
		return
	}
	for _, h := range f.handles[name] {
		go h.Release() // the connection ends a little later
	}
	delete(f.handles, name)
}

type fixture struct {
	reg   *tenant.Registry
	conns *fakeConns
	srv   *Server
	sock  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	base := t.TempDir()
	lower := filepath.Join(base, "lower")
	if err := os.MkdirAll(lower, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(lower, "greeting"), []byte("hello"), 0o644)
	reg, err := tenant.Open(tenant.Config{Dir: filepath.Join(base, "tenants"), Lowers: []string{lower}, DefaultQuota: tenant.Quota{Bytes: 1 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{reg: reg, conns: &fakeConns{}, sock: filepath.Join(base, "run", "control.sock")}
	os.Mkdir(filepath.Dir(f.sock), 0o755)
	f.srv = &Server{Tenants: reg, Conns: f.conns, DrainTimeout: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	l, err := Listen(f.sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.srv.Serve(l) }()
	t.Cleanup(func() {
		f.srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		reg.Close()
	})
	return f
}

func (f *fixture) dial(t *testing.T) *Client {
	t.Helper()
	c, err := Dial(f.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, what string, err error, code Code) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("%s: %v, want code %s", what, err, code)
	}
}

func TestListenOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "c.sock")
	l, err := Listen(sock)
	must(t, err)
	var st unix.Stat_t
	must(t, unix.Lstat(sock, &st))
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Mode&0o777 != 0o600 || int(st.Uid) != os.Geteuid() {
		t.Fatalf("socket mode %o uid %d, want a 0600 socket of uid %d", st.Mode, st.Uid, os.Geteuid())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("Listen left %v beside the socket", ents)
	}
	// Connectable at its final path.
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("unix", sock)
	must(t, err)
	c.Close()
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "already listening") {
		t.Fatalf("second Listen: %v", err)
	}
	must(t, l.Close())
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket after Close: %v", err)
	}

	// A stale socket (a crashed server's) is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	must(t, err)
	stale.SetUnlinkOnClose(false)
	stale.Close()
	l, err = Listen(sock)
	must(t, err)
	l.Close()

	// A path as long as a socket address allows works (the temporary
	// name is not longer); one byte more is a clear error.
	long := filepath.Join(dir, strings.Repeat("l", maxSockPath-1-len(dir)-1))
	l, err = Listen(long)
	must(t, err)
	c, err = net.Dial("unix", long)
	must(t, err)
	c.Close()
	l.Close()
	if _, err := Listen(long + "x"); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("Listen on a path too long: %v", err)
	}

	// Anything else at the path is left alone.
	must(t, os.WriteFile(sock, []byte("data"), 0o644))
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a file: %v", err)
	}
	if got, _ := os.ReadFile(sock); string(got) != "data" {
		t.Fatal("the file at the socket path was changed")
	}
}

func TestRoundTrips(t *testing.T) {
	f := newFixture(t)
	c := f.dial(t)
	list, err := c.List()
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("empty registry lists %+v", list)
	}
	must(t, c.Add("a"))
	must(t, c.Add("b"))
	h, err := f.reg.Acquire(context.Background(), "a")
	must(t, err)
	f.conns.hold(h)
	must(t, c.SetQuota("a", &tenant.Quota{Bytes: 1 << 20, Inodes: 100}))

	list, err = c.List()
	must(t, err)
	if len(list) != 2 || list[0].Name != "a" || list[1].Name != "b" {
		t.Fatalf("list: %+v", list)
	}
	a, b := list[0], list[1]
	if a.Connections != 1 || !a.OwnQuota || a.Quota != (tenant.Quota{Bytes: 1 << 20, Inodes: 100}) || a.Usage.Inodes != 1 {
		t.Fatalf("a: %+v", a)
	}
	if b.Connections != 0 || b.OwnQuota || b.Quota != (tenant.Quota{Bytes: 1 << 30}) {
		t.Fatalf("b: %+v", b)
	}

	// Reset a: its connection is closed through the fake, then emptied.
	up := filepath.Join(f.reg.Dir(), "a", "upper")
	must(t, os.WriteFile(filepath.Join(up, "scratch"), []byte("x"), 0o644))
	must(t, c.Reset("a"))
	if len(f.conns.evicted) != 1 || f.conns.evicted[0] != "a" {
		t.Fatalf("evicted %v, want [a]", f.conns.evicted)
	}
	if ents, _ := os.ReadDir(up); len(ents) != 0 {
		t.Fatalf("upper after reset: %v", ents)
	}
	must(t, c.SetQuota("a", nil))
	must(t, c.Remove("b"))
	list, err = c.List()
	must(t, err)
	if len(list) != 1 || list[0].Name != "a" || list[0].OwnQuota || list[0].Connections != 0 {
		t.Fatalf("list after reset, quota default, remove: %+v", list)
	}
	if _, err := os.Stat(filepath.Join(f.reg.Dir(), "b")); !os.IsNotExist(err) {
		t.Fatalf("b after remove: %v", err)
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	c := f.dial(t)
	must(t, c.Add("a"))
	wantCode(t, "add existing", c.Add("a"), CodeExists)
	wantCode(t, "add ..", c.Add(".."), CodeBadName)
	wantCode(t, "add a/b", c.Add("a/b"), CodeBadName)
	wantCode(t, "add NUL", c.Add("a\x00"), CodeBadName)
	wantCode(t, "reset unknown", c.Reset("nope"), CodeNotFound)
	wantCode(t, "remove unknown", c.Remove("nope"), CodeNotFound)
	wantCode(t, "quota unknown", c.SetQuota("nope", &tenant.Quota{}), CodeNotFound)
	wantCode(t, "negative quota", c.SetQuota("a", &tenant.Quota{Bytes: -5}), CodeFailed)

	for _, line := range []string{
		`not json`,
		`{"op":"frobnicate"}`,
		`{"op":"list","colour":"red"}`,
		`{"op":"list","name":"a"}`,
		`{"op":"add"}`,
		`{"op":"quota","name":"a"}`,
		`{"op":"quota","name":"a","quota":{"bytes":1},"default":true}`,
		`{"op":"add","name":"a","quota":{"bytes":1}}`,
		`{"op":"list"} {"op":"list"}`,
		`[1,2,3]`,
	} {
		if _, err := c.conn.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := c.r.ReadString('\n')
		if err != nil || !strings.Contains(resp, `"code":"bad_request"`) {
			t.Fatalf("%s: answered %q, %v", line, resp, err)
		}
	}
	// The connection still works after all that.
	if _, err := c.List(); err != nil {
		t.Fatal(err)
	}

	// A stuck 9P server: the reset gives up with busy, nothing changed.
	f.srv.DrainTimeout = 100 * time.Millisecond
	f.conns.stuck = true
	h, err := f.reg.Acquire(context.Background(), "a")
	must(t, err)
	defer h.Release()
	marker := filepath.Join(f.reg.Dir(), "a", "upper", "marker")
	must(t, os.WriteFile(marker, nil, 0o644))
	wantCode(t, "reset with stuck connections", c.Reset("a"), CodeBusy)
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("a reset that gave up changed the upper: %v", err)
	}

	// A line too long: answered, then the connection ends.
	big := `{"op":"add","name":"` + strings.Repeat("x", MaxLine) + `"}` + "\n"
	go c.conn.Write([]byte(big))
	resp, err := c.r.ReadString('\n')
	if err != nil || !strings.Contains(resp, "longer than") {
		t.Fatalf("long line: %q %v", resp, err)
	}
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.r.ReadString('\n'); err == nil {
		t.Fatal("connection kept after a line too long")
	}
	// Other clients are unaffected.
	if _, err := f.dial(t).List(); err != nil {
		t.Fatal(err)
	}
}

func TestDialNoServer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	if _, err := Dial(sock); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("dial missing socket: %v", err)
	}
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	must(t, err)
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if _, err := Dial(sock); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("dial stale socket: %v", err)
	}
}

// Even if the socket's mode is opened up, another user is refused by the
// server's peer check.
func TestPeerOfAnotherUserDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root to run a client as another uid (the tests run as root)")
	}
	f := newFixture(t)
	must(t, os.Chmod(filepath.Dir(f.sock), 0o755))
	must(t, os.Chmod(f.sock, 0o666))
	// The test binary must be reachable by uid 65534.
	exe, err := os.Executable()
	must(t, err)
	bin := filepath.Join(t.TempDir(), "client")
	data, err := os.ReadFile(exe)
	must(t, err)
	must(t, os.WriteFile(bin, data, 0o755))
	for _, d := range []string{filepath.Dir(bin), filepath.Dir(filepath.Dir(bin)), filepath.Dir(f.sock), filepath.Dir(filepath.Dir(f.sock))} {
		os.Chmod(d, 0o755)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"UNION9P_CONTROL_TEST_DIAL=" + f.sock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != string(CodeDenied) {
		t.Fatalf("client as uid 65534: %q, %v; want %q", out, err, CodeDenied)
	}
}

// Close ends a reset that waits for connections, rather than wait for it.
func TestCloseEndsWaitingReset(t *testing.T) {
	f := newFixture(t)
	c := f.dial(t)
	must(t, c.Add("a"))
	h, err := f.reg.Acquire(context.Background(), "a")
	must(t, err)
	defer h.Release()
	f.conns.stuck = true
	f.srv.DrainTimeout = time.Hour
	done := make(chan error, 1)
	go func() { done <- c.Reset("a") }()
	for len(f.reg.List()) == 0 || !f.reg.List()[0].Busy {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	f.srv.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if err := <-done; err == nil {
		t.Fatal("reset succeeded with a stuck connection")
	}
}
