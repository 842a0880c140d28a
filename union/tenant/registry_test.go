package tenant

import (
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// fixture is a tenants directory over one shared lower.
type fixture struct {
	dir, lower string
	cfg        Config
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	base := t.TempDir()
	f := &fixture{dir: filepath.Join(base, "tenants"), lower: filepath.Join(base, "lower")}
	must(t, os.MkdirAll(filepath.Join(f.lower, "etc"), 0o755))
	must(t, os.Chmod(f.lower, 0o751))
	must(t, os.WriteFile(filepath.Join(f.lower, "greeting"), []byte("hello"), 0o644))
	must(t, os.WriteFile(filepath.Join(f.lower, "etc", "conf"), []byte("base"), 0o644))
	f.cfg = Config{Dir: f.dir, Lowers: []string{f.lower}}
	return f
}

func (f *fixture) open(t *testing.T) *Registry {
	t.Helper()
	r, err := Open(f.cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func acquire(t *testing.T, r *Registry, name string) *Handle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := r.Acquire(ctx, name)
	if err != nil {
		t.Fatalf("Acquire %s: %v", name, err)
	}
	return h
}

// lookup reports whether the union has path (slash-separated).
func lookup(t *testing.T, u *union.Union, path string) bool {
	t.Helper()
	n, err := u.Root()
	must(t, err)
	for _, c := range strings.Split(path, "/") {
		next, err := n.Lookup(c)
		n.Release()
		if errors.Is(err, unix.ENOENT) {
			return false
		}
		must(t, err)
		n = next
	}
	n.Release()
	return true
}

// write creates path's last component in the union's root with data.
func write(t *testing.T, u *union.Union, name, data string) {
	t.Helper()
	root, err := u.Root()
	must(t, err)
	defer root.Release()
	n, f, err := root.Create(name, unix.O_RDWR, 0o644, union.Owner{})
	must(t, err)
	defer n.Release()
	_, err = f.WriteAt([]byte(data), 0)
	must(t, err)
	f.Close()
}

func info(t *testing.T, r *Registry, name string) Info {
	t.Helper()
	for _, in := range r.List() {
		if in.Name == name {
			return in
		}
	}
	t.Fatalf("tenant %s not listed", name)
	return Info{}
}

func TestTenantsAreIsolated(t *testing.T) {
	f := newFixture(t)
	r := f.open(t)
	must(t, r.Add("a"))
	must(t, r.Add("b"))
	ha, hb := acquire(t, r, "a"), acquire(t, r, "b")
	defer ha.Release()
	defer hb.Release()

	write(t, ha.Union(), "mine", "a's data")
	root, _ := ha.Union().Root()
	must(t, root.Unlink("greeting", false)) // a whiteout in a's upper
	etc, err := root.Lookup("etc")
	must(t, err)
	must(t, etc.Unlink("conf", false)) // copies etc up in a's upper
	etc.Release()
	root.Release()

	if lookup(t, ha.Union(), "greeting") || !lookup(t, ha.Union(), "mine") {
		t.Fatal("tenant a does not see its own changes")
	}
	if !lookup(t, hb.Union(), "greeting") || !lookup(t, hb.Union(), "etc/conf") || lookup(t, hb.Union(), "mine") {
		t.Fatal("tenant b sees tenant a's changes")
	}
	if _, err := os.Stat(filepath.Join(f.dir, "a", "upper", "mine")); err != nil {
		t.Fatalf("a's file not in a's upper: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(f.dir, "b", "upper")); len(ents) != 0 {
		t.Fatalf("b's upper not empty: %v", ents)
	}
	if got, _ := os.ReadFile(filepath.Join(f.lower, "greeting")); string(got) != "hello" {
		t.Fatal("lower changed")
	}
	if in := info(t, r, "a"); in.Connections != 1 {
		t.Fatalf("a has %d connections, want 1", in.Connections)
	}
	// A fresh upper looks like the base's root.
	var lo, up unix.Stat_t
	must(t, unix.Stat(f.lower, &lo))
	must(t, unix.Stat(filepath.Join(f.dir, "b", "upper"), &up))
	if lo.Mode != up.Mode || lo.Uid != up.Uid {
		t.Fatalf("fresh upper mode %o uid %d, lower root %o uid %d", up.Mode, up.Uid, lo.Mode, lo.Uid)
	}
}

func TestResetEndsConnectionsAndEmptiesUpper(t *testing.T) {
	f := newFixture(t)
	r := f.open(t)
	must(t, r.Add("a"))
	must(t, r.SetQuota("a", &Quota{Bytes: 1 << 20, Inodes: 100}))
	h := acquire(t, r, "a")
	write(t, h.Union(), "scratch", strings.Repeat("x", 5000))
	root, _ := h.Union().Root()
	must(t, root.Unlink("greeting", false))
	root.Release()

	// The fake server: evicting closes the connection a little later,
	// as a real one finishes its requests in flight first.
	evicted := make(chan struct{})
	evict := func(name string) {
		if name != "a" {
			t.Errorf("evict %q", name)
		}
		close(evicted)
		go func() {
			time.Sleep(50 * time.Millisecond)
			h.Release()
		}()
	}
	// A connection arriving during the reset waits for it and then sees
	// the pristine base.
	late := make(chan *Handle, 1)
	go func() {
		<-evicted
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h2, err := r.Acquire(ctx, "a")
		if err != nil {
			t.Error(err)
		}
		late <- h2
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, r.Reset(ctx, "a", evict))

	h2 := <-late
	if h2 == nil {
		t.FailNow()
	}
	defer h2.Release()
	if lookup(t, h2.Union(), "scratch") || !lookup(t, h2.Union(), "greeting") {
		t.Fatal("after reset the tenant does not see the pristine base")
	}
	ents, err := os.ReadDir(filepath.Join(f.dir, "a", "upper"))
	if err != nil || len(ents) != 0 {
		t.Fatalf("upper after reset: %v %v", ents, err)
	}
	ents, _ = os.ReadDir(filepath.Join(f.dir, "a"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("reset left %s", e.Name())
		}
	}
	in := info(t, r, "a")
	want := duMeasurement(t, filepath.Join(f.dir, "a", "upper")).Usage
	if in.Usage != want || in.Quota != (Quota{1 << 20, 100}) || !in.OwnQuota {
		t.Fatalf("after reset: %+v, want usage %+v and the tenant's quota kept", in, want)
	}
}

func TestResetWaitsForConnectionsOrGivesUp(t *testing.T) {
	f := newFixture(t)
	r := f.open(t)
	must(t, r.Add("a"))
	h := acquire(t, r, "a")
	defer h.Release()
	write(t, h.Union(), "keep-me", "x")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := r.Reset(ctx, "a", func(string) {}) // a server that fails to evict
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "1 connections still open") {
		t.Fatalf("reset with a stuck connection: %v, want ErrBusy", err)
	}
	if !lookup(t, h.Union(), "keep-me") {
		t.Fatal("a reset that gave up changed the tenant")
	}
	if h2 := acquire(t, r, "a"); h2 != nil {
		h2.Release()
	}
	// Two operations on one tenant at once: the second is refused.
	release, resetDone := make(chan struct{}), make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resetDone <- r.Reset(ctx, "a", func(string) { <-release; h.Release() })
	}()
	for !info(t, r, "a").Busy {
		time.Sleep(time.Millisecond)
	}
	if err := r.Remove(context.Background(), "a", nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("remove during a reset: %v, want ErrBusy", err)
	}
	close(release)
	must(t, <-resetDone)
}

// Close waits for an operation in progress rather than close the
// directory under it.
func TestCloseWaitsForOperations(t *testing.T) {
	f := newFixture(t)
	r := f.open(t)
	must(t, r.Add("a"))
	h := acquire(t, r, "a")
	write(t, h.Union(), "x", "y")
	evicting, resetDone := make(chan struct{}), make(chan error)
	go func() {
		resetDone <- r.Reset(context.Background(), "a", func(string) {
			close(evicting)
			time.Sleep(100 * time.Millisecond)
			h.Release()
		})
	}()
	<-evicting
	must(t, r.Close())
	// When Close returns, the reset has done all its work (its result
	// may not have reached the goroutine yet).
	ents, _ := os.ReadDir(filepath.Join(f.dir, "a"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), resetPfx) {
			t.Fatalf("Close returned while the reset was still removing %s", e.Name())
		}
	}
	if ents, err := os.ReadDir(filepath.Join(f.dir, "a", "upper")); err != nil || len(ents) != 0 {
		t.Fatalf("Close returned before the reset emptied the upper: %v %v", ents, err)
	}
	must(t, <-resetDone)
	if err := r.Add("b"); !errors.Is(err, ErrClosed) {
		t.Fatalf("add after close: %v", err)
	}
}

// A reset that cannot move the work directory aside (a mount point there)
// fails and leaves the tenant as it was.
func TestFailedResetLeavesTenant(t *testing.T) {
	f := newFixture(t)
	r := f.open(t)
	must(t, r.Add("a"))
	h := acquire(t, r, "a")
	write(t, h.Union(), "kept", "x")
	h.Release()
	mountTmpfs(t, filepath.Join(f.dir, "a", "work"))
	err := r.Reset(context.Background(), "a", nil)
	if err == nil || !strings.Contains(err.Error(), "a/work") {
		t.Fatalf("reset with a mount on work: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "a", "upper", "kept")); err != nil {
		t.Fatalf("the failed reset lost the upper: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(f.dir, "a"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("the failed reset left %s", e.Name())
		}
	}
}

func TestRemoveThenAddAgain(t *testing.T) {
	f := newFixture(t)
	r := f.open(t)
	must(t, r.Add("a"))
	h := acquire(t, r, "a")
	write(t, h.Union(), "old", "x")
	must(t, r.Remove(context.Background(), "a", func(string) { h.Release() }))
	if _, err := os.Lstat(filepath.Join(f.dir, "a")); !os.IsNotExist(err) {
		t.Fatalf("DIR/a after remove: %v", err)
	}
	if ents, _ := os.ReadDir(f.dir); len(ents) != 0 {
		t.Fatalf("remove left %v", ents)
	}
	if _, err := r.Acquire(context.Background(), "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("acquire removed tenant: %v", err)
	}
	if err := r.Reset(context.Background(), "a", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reset removed tenant: %v", err)
	}
	must(t, r.Add("a"))
	if err := r.Add("a"); !errors.Is(err, ErrExists) {
		t.Fatalf("second add: %v, want ErrExists", err)
	}
	h = acquire(t, r, "a")
	defer h.Release()
	if lookup(t, h.Union(), "old") {
		t.Fatal("a re-added tenant sees the removed one's files")
	}
}

func TestBadNamesRefused(t *testing.T) {
	f := newFixture(t)
	r := f.open(t)
	for _, n := range []string{"", "/", ".", "..", "a/b", "a\x00", strings.Repeat("n", 256)} {
		if err := r.Add(n); !errors.Is(err, ErrBadName) {
			t.Errorf("Add(%q): %v", n, err)
		}
		if _, err := r.Acquire(context.Background(), n); !errors.Is(err, ErrBadName) {
			t.Errorf("Acquire(%q): %v", n, err)
		}
		if err := r.Reset(context.Background(), n, nil); !errors.Is(err, ErrBadName) {
			t.Errorf("Reset(%q): %v", n, err)
		}
		if err := r.Remove(context.Background(), n, nil); !errors.Is(err, ErrBadName) {
			t.Errorf("Remove(%q): %v", n, err)
		}
		if err := r.SetQuota(n, nil); !errors.Is(err, ErrBadName) {
			t.Errorf("SetQuota(%q): %v", n, err)
		}
	}
	if ents, _ := os.ReadDir(f.dir); len(ents) != 0 {
		t.Fatalf("bad names made %v", ents)
	}
}

func TestAutoCreate(t *testing.T) {
	f := newFixture(t)
	r := f.open(t)
	if _, err := r.Acquire(context.Background(), "new"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("acquire unknown: %v, want ErrNotFound", err)
	}
	r.Close()
	f.cfg.AutoCreate = true
	r = f.open(t)
	h := acquire(t, r, "new")
	defer h.Release()
	if !lookup(t, h.Union(), "greeting") {
		t.Fatal("auto-created tenant does not see the base")
	}
	if fi, err := os.Stat(filepath.Join(f.dir, "new", "work")); err != nil || !fi.IsDir() {
		t.Fatalf("work dir: %v", err)
	}
}

// Symbolic links planted in the tenants directory while serving: the
// tenant directory itself, its upper, and links inside its upper. Nothing
// outside DIR changes, and the errors say what was found.
func TestSymlinkTricks(t *testing.T) {
	out, check := sentinel(t)
	f := newFixture(t)
	r := f.open(t)
	for _, n := range []string{"a", "b", "c"} {
		must(t, r.Add(n))
	}
	// a: the whole tenant directory replaced by a link to the outside.
	must(t, os.Rename(filepath.Join(f.dir, "a"), filepath.Join(f.dir, "a-moved")))
	must(t, os.Symlink(out, filepath.Join(f.dir, "a")))
	for op, err := range map[string]error{
		"reset":  r.Reset(context.Background(), "a", nil),
		"remove": r.Remove(context.Background(), "a", nil),
		"quota":  r.SetQuota("a", &Quota{Bytes: 1}),
	} {
		if err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("%s of a tenant replaced by a symlink: %v", op, err)
		}
	}
	if _, err := r.Acquire(context.Background(), "a"); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("acquire of a tenant replaced by a symlink: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "quota")); !os.IsNotExist(err) {
		t.Error("a quota file was written through the link")
	}

	// b: its upper replaced by a link; reset removes the link and makes
	// a real, empty upper.
	must(t, os.RemoveAll(filepath.Join(f.dir, "b", "upper")))
	must(t, os.Symlink(out, filepath.Join(f.dir, "b", "upper")))
	if _, err := r.Acquire(context.Background(), "b"); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("acquire of a tenant whose upper is a symlink: %v", err)
	}
	must(t, r.Reset(context.Background(), "b", nil))
	if fi, err := os.Lstat(filepath.Join(f.dir, "b", "upper")); err != nil || !fi.IsDir() {
		t.Fatalf("b's upper after reset: %v", err)
	}

	// c: links to the outside inside the upper, of every kind.
	cu := filepath.Join(f.dir, "c", "upper")
	must(t, os.Symlink(out, filepath.Join(cu, "abs")))
	must(t, os.Symlink("../../../../outside", filepath.Join(cu, "rel")))
	must(t, os.Mkdir(filepath.Join(cu, "d"), 0o755))
	must(t, os.Symlink(filepath.Join(out, "sub"), filepath.Join(cu, "d", "sub")))
	must(t, os.Link(filepath.Join(out, "keep"), filepath.Join(cu, "d", "hard")))
	must(t, r.Reset(context.Background(), "c", nil))
	if ents, _ := os.ReadDir(cu); len(ents) != 0 {
		t.Fatalf("c's upper after reset: %v", ents)
	}
	must(t, r.Remove(context.Background(), "c", nil))
	check()

	// A registry opened on a directory holding such a link refuses it.
	r.Close()
	if _, err := Open(f.cfg); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Open with DIR/a a symlink: %v", err)
	}
	check()
}

func TestWorkOnAnotherFilesystemRefused(t *testing.T) {
	f := newFixture(t)
	must(t, os.MkdirAll(filepath.Join(f.dir, "a", "upper"), 0o755))
	must(t, os.MkdirAll(filepath.Join(f.dir, "a", "work"), 0o700))
	mountTmpfs(t, filepath.Join(f.dir, "a", "work"))
	_, err := Open(f.cfg)
	if err == nil || !strings.Contains(err.Error(), "another filesystem") || !strings.Contains(err.Error(), "a/work") {
		t.Fatalf("Open: %v, want a work-on-another-filesystem error", err)
	}
	// Both on one filesystem of their own (the tenant directory is a
	// mount point) is fine.
	unix.Unmount(filepath.Join(f.dir, "a", "work"), unix.MNT_DETACH)
	must(t, os.RemoveAll(filepath.Join(f.dir, "a")))
	must(t, os.Mkdir(filepath.Join(f.dir, "a"), 0o700))
	mountTmpfs(t, filepath.Join(f.dir, "a"))
	r := f.open(t)
	h := acquire(t, r, "a")
	write(t, h.Union(), "x", "y")
	h.Release()
}

func TestOpenRefusesLowersInsideTenants(t *testing.T) {
	f := newFixture(t)
	inside := filepath.Join(f.dir, "lower")
	must(t, os.MkdirAll(inside, 0o755))
	for _, lowers := range [][]string{{inside}, {filepath.Dir(f.dir)}} {
		f.cfg.Lowers = lowers
		if _, err := Open(f.cfg); err == nil || !strings.Contains(err.Error(), "must not contain each other") {
			t.Errorf("lowers %v: %v", lowers, err)
		}
	}
}

// Open removes what interrupted operations left (and only that), and
// counts each tenant's upper as du does.
func TestOpenCleansLeftoversAndRecounts(t *testing.T) {
	f := newFixture(t)
	must(t, os.MkdirAll(filepath.Join(f.dir, ".removing-x-0123", "upper", "deep"), 0o755))
	must(t, os.MkdirAll(filepath.Join(f.dir, "a", ".reset-abcd", "sub"), 0o755))
	must(t, os.MkdirAll(filepath.Join(f.dir, "lost+found"), 0o700))
	must(t, os.WriteFile(filepath.Join(f.dir, "lost+found", "x"), nil, 0o644))
	must(t, os.MkdirAll(filepath.Join(f.dir, "a", "upper"), 0o755))
	randomTree(t, filepath.Join(f.dir, "a", "upper"), rand.New(rand.NewSource(7)))
	r := f.open(t)
	for _, p := range []string{".removing-x-0123", "a/.reset-abcd"} {
		if _, err := os.Lstat(filepath.Join(f.dir, p)); !os.IsNotExist(err) {
			t.Errorf("leftover %s not removed: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(f.dir, "lost+found", "x")); err != nil {
		t.Errorf("a stranger in the tenants directory was touched: %v", err)
	}
	if got := r.List(); len(got) != 1 || got[0].Name != "a" {
		t.Fatalf("tenants: %+v", got)
	}
	want := duMeasurement(t, filepath.Join(f.dir, "a", "upper")).Usage
	if got := info(t, r, "a").Usage; got != want {
		t.Fatalf("recount at start %+v, du %+v", got, want)
	}
}

func TestQuotaPersistsAndCharges(t *testing.T) {
	f := newFixture(t)
	f.cfg.DefaultQuota = Quota{Bytes: 1 << 30}
	r := f.open(t)
	must(t, r.Add("a"))
	must(t, r.Add("b"))
	if in := info(t, r, "a"); in.Quota != f.cfg.DefaultQuota || in.OwnQuota {
		t.Fatalf("default quota: %+v", in)
	}
	used := info(t, r, "a").Usage
	must(t, r.SetQuota("a", &Quota{Bytes: used.Bytes + 100, Inodes: used.Inodes + 2}))
	h := acquire(t, r, "a")
	if err := h.Ledger().Charge(Usage{Bytes: 100, Inodes: 2}); err != nil {
		t.Fatalf("charge up to the quota: %v", err)
	}
	if err := h.Ledger().Charge(Usage{Inodes: 1}); !errors.Is(err, unix.EDQUOT) {
		t.Fatalf("charge past the quota: %v", err)
	}
	h.Release()
	if err := r.SetQuota("nope", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("quota of unknown tenant: %v", err)
	}
	if err := r.SetQuota("a", &Quota{Bytes: -1}); err == nil {
		t.Fatal("negative quota accepted")
	}
	r.Close()

	r = f.open(t)
	if in := info(t, r, "a"); !in.OwnQuota || in.Quota != (Quota{used.Bytes + 100, used.Inodes + 2}) {
		t.Fatalf("quota after reopening: %+v", in)
	}
	if in := info(t, r, "b"); in.OwnQuota || in.Quota != f.cfg.DefaultQuota {
		t.Fatalf("b's quota: %+v", in)
	}
	must(t, r.SetQuota("a", nil))
	if in := info(t, r, "a"); in.OwnQuota || in.Quota != f.cfg.DefaultQuota {
		t.Fatalf("quota back to default: %+v", in)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "a", "quota")); !os.IsNotExist(err) {
		t.Fatalf("quota file after returning to default: %v", err)
	}
	// A corrupt quota file is an error naming it, not a silent default.
	must(t, os.WriteFile(filepath.Join(f.dir, "b", "quota"), []byte("{nonsense"), 0o600))
	r.Close()
	if _, err := Open(f.cfg); err == nil || !strings.Contains(err.Error(), "b/quota") {
		t.Fatalf("Open with a corrupt quota file: %v", err)
	}
}
