package tenant

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// Errors the registry's operations wrap; control maps them to its codes.
var (
	ErrNotFound = errors.New("no such tenant")
	ErrExists   = errors.New("tenant exists")
	ErrBusy     = errors.New("tenant busy")
	ErrClosed   = errors.New("tenant registry closed")
)

// Config describes a tenants directory and what its tenants share.
type Config struct {
	// Dir holds one directory per tenant (see layout.go). It is made
	// (mode 0700) if missing; its parent must exist.
	Dir string
	// Lowers are the shared read-only layers, topmost first.
	Lowers []string
	// Ownership is passed to every tenant's union.
	Ownership union.Ownership
	// DefaultQuota applies to tenants without their own quota.
	DefaultQuota Quota
	// AutoCreate makes Acquire create a tenant that does not exist.
	AutoCreate bool
	// Logger receives warnings (entries of Dir that are not tenants);
	// nil uses slog.Default().
	Logger *slog.Logger
}

// Registry is the set of tenants of a tenants directory. All its methods
// are safe for concurrent use. The registry mutex guards the table and
// each tenant's state; it is never held across host I/O on a tenant's tree
// (opening a union, emptying, counting): a tenant under such an operation
// is marked busy instead, and others wait for it or are refused with
// ErrBusy.
type Registry struct {
	cfg   Config
	dir   string // absolute, symlinks resolved once at Open
	dirfd int    // the tenants directory, O_PATH

	// lowers is the lower side every tenant's union shares (opened once:
	// one cache of lower lookups, listings and ids for all tenants);
	// nil without lowers.
	lowers *union.LowerSet

	rootMode  uint32  // mode of a fresh upper (the top lower root's)
	rootOwner *[2]int // uid, gid of a fresh upper; nil: the server's
	log       *slog.Logger

	mu      sync.Mutex
	tenants map[string]*tenant
	closed  bool
	// ops counts operations that use dirfd (begin/end), so that Close
	// never closes it under them: a closed descriptor's number is soon
	// reused, and a late rename through it would land elsewhere.
	ops sync.WaitGroup
}

// begin registers an operation that uses the tenants directory; it fails
// once the registry is closed. Called with r.mu held.
func (r *Registry) begin() error {
	if r.closed {
		return ErrClosed
	}
	r.ops.Add(1)
	return nil
}

// tenant is one tenant's state; fields are guarded by Registry.mu, except
// ledger, which has its own lock.
type tenant struct {
	name   string
	ledger *Ledger
	own    *Quota        // its own quota; nil: the default
	u      *union.Union  // opened at the first Acquire
	refs   int           // Handles not yet released
	busy   chan struct{} // non-nil while an operation owns the tenant; closed at its end
	// claimed is true while that operation is a reset or remove (not an
	// add or a union open, which a reset waits for rather than refuse).
	claimed bool
	idle    chan struct{} // non-nil while a reset waits for refs to reach 0
}

// Open opens the tenants directory, removes what interrupted operations
// left, and loads every tenant in it, counting its upper. It fails, naming
// the tenant, if a tenant directory is not laid out safely (a symbolic link
// in place of a directory, a work directory on another filesystem than its
// upper, an unreadable quota file). Entries whose names are not tenant
// names (lost+found) are left alone.
func Open(cfg Config) (*Registry, error) {
	if cfg.Dir == "" {
		return nil, errors.New("tenants: no tenants directory")
	}
	if cfg.DefaultQuota.Bytes < 0 || cfg.DefaultQuota.Inodes < 0 {
		return nil, errors.New("tenants: negative default quota")
	}
	r := &Registry{cfg: cfg, tenants: map[string]*tenant{}, log: cfg.Logger, rootMode: 0o755, dirfd: -1}
	if r.log == nil {
		r.log = slog.Default()
	}
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("tenants directory %q: %w", cfg.Dir, err)
	}
	if err := os.Mkdir(abs, 0o700); err != nil && !os.IsExist(err) {
		return nil, fmt.Errorf("tenants directory %q: %w", cfg.Dir, err)
	}
	if r.dir, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("tenants directory %q: %w", cfg.Dir, err)
	}
	for _, l := range cfg.Lowers {
		la, err := filepath.Abs(l)
		if err == nil {
			la, err = filepath.EvalSymlinks(la)
		}
		if err != nil {
			return nil, fmt.Errorf("lowerdir %q: %w", l, err)
		}
		if within(la, r.dir) || within(r.dir, la) {
			return nil, fmt.Errorf("tenants directory %q and lowerdir %q must not contain each other (the lower would be written)", cfg.Dir, l)
		}
	}
	if len(cfg.Lowers) > 0 {
		var st unix.Stat_t
		if err := unix.Stat(cfg.Lowers[0], &st); err != nil {
			return nil, fmt.Errorf("lowerdir %q: %w", cfg.Lowers[0], err)
		}
		r.rootMode = st.Mode & 0o7777
		r.rootOwner = &[2]int{int(st.Uid), int(st.Gid)}
	}
	if r.dirfd, err = unix.Open(r.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return nil, fmt.Errorf("tenants directory %q: %w", cfg.Dir, err)
	}
	if err := r.load(); err != nil {
		unix.Close(r.dirfd)
		return nil, err
	}
	if len(cfg.Lowers) > 0 {
		// The tenants' uppers are on the tenants directory's filesystem
		// (layout.go), which is numbered first in stable ids, as a
		// union of its own numbers its upper's.
		if r.lowers, err = union.OpenLowers(cfg.Lowers, r.dir); err != nil {
			unix.Close(r.dirfd)
			return nil, err
		}
	}
	return r, nil
}

// within reports whether path p is dir or lies below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// load finds the tenants in the directory (at Open).
func (r *Registry) load() error {
	fd, err := openDirAt(r.dirfd, ".")
	if err != nil {
		return fmt.Errorf("tenants directory %s: %w", r.dir, err)
	}
	names, err := readNames(fd)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("tenants directory %s: %w", r.dir, err)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.HasPrefix(n, removingPfx) {
			if err := removeAllAt(r.dirfd, n); err != nil {
				return fmt.Errorf("tenants directory %s: remove leftover %s: %w", r.dir, n, err)
			}
			continue
		}
		if err := ValidName(n); err != nil {
			r.log.Warn("tenants directory: entry is not a tenant, left alone", "dir", r.dir, "name", n)
			continue
		}
		t, err := r.loadTenant(n)
		if err != nil {
			return err
		}
		r.tenants[n] = t
	}
	return nil
}

// loadTenant checks, completes and counts DIR/NAME.
func (r *Registry) loadTenant(name string) (*tenant, error) {
	l, err := r.openLayers(name)
	if err != nil {
		return nil, err
	}
	defer l.close()
	if err := removeLeftovers(l.tenant); err != nil {
		return nil, fmt.Errorf("tenant %s: %w", name, err)
	}
	own, err := readQuota(l.tenant)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %s/%s/%w", name, r.dir, name, err)
	}
	m, err := Measure(l.upper)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: upper %s/%s/upper: %w", name, r.dir, name, err)
	}
	t := &tenant{name: name, own: own}
	t.ledger = NewLedger(m.Usage, r.quotaOf(t))
	return t, nil
}

// quotaOf is the quota that applies to t. Called with r.mu held or before
// t is shared.
func (r *Registry) quotaOf(t *tenant) Quota {
	if t.own != nil {
		return *t.own
	}
	return r.cfg.DefaultQuota
}

// Dir returns the tenants directory's absolute path.
func (r *Registry) Dir() string { return r.dir }

// Add creates a tenant (its directory, an empty upper and work directory).
// It fails with ErrExists if the tenant is already known.
func (r *Registry) Add(name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	r.mu.Lock()
	if err := r.begin(); err != nil {
		r.mu.Unlock()
		return err
	}
	defer r.ops.Done()
	if r.tenants[name] != nil {
		r.mu.Unlock()
		return fmt.Errorf("tenant %s: %w", name, ErrExists)
	}
	// Reserve the name while the directories are made: Acquire waits,
	// another Add fails.
	t := &tenant{name: name, busy: make(chan struct{})}
	r.tenants[name] = t
	r.mu.Unlock()

	var loaded *tenant
	err := unix.Mkdirat(r.dirfd, name, 0o700)
	if err == nil || err == unix.EEXIST {
		// EEXIST: made behind the registry's back (or by a crashed
		// add); adopt it if it is laid out safely.
		loaded, err = r.loadTenant(name)
	} else {
		err = r.layoutErr(name, "", err)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	close(t.busy)
	t.busy = nil
	if err != nil {
		delete(r.tenants, name)
		return err
	}
	t.ledger, t.own = loaded.ledger, loaded.own
	return nil
}

// Handle is a use of a tenant's union by one connection. Release it when
// the connection ends; a reset or remove waits for every Handle of the
// tenant to be released.
type Handle struct {
	r    *Registry
	t    *tenant
	u    *union.Union
	once sync.Once
}

// Name returns the tenant's name.
func (h *Handle) Name() string { return h.t.name }

// Union returns the tenant's union, shared by all its Handles. It must not
// be used after Release.
func (h *Handle) Union() *union.Union { return h.u }

// Ledger returns the tenant's quota ledger.
func (h *Handle) Ledger() *Ledger { return h.t.ledger }

// Release ends this use. Calling it again does nothing.
func (h *Handle) Release() {
	h.once.Do(func() {
		h.r.mu.Lock()
		defer h.r.mu.Unlock()
		h.t.refs--
		if h.t.refs == 0 && h.t.idle != nil {
			close(h.t.idle)
			h.t.idle = nil
		}
	})
}

// Acquire returns a Handle on the tenant's union, opening the union at the
// tenant's first use. While the tenant is being reset (or added, or its
// union opened) it waits, until ctx ends; a tenant removed meanwhile is
// ErrNotFound. With Config.AutoCreate an unknown tenant is created.
func (r *Registry) Acquire(ctx context.Context, name string) (*Handle, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return nil, ErrClosed
		}
		t := r.tenants[name]
		if t == nil {
			r.mu.Unlock()
			if !r.cfg.AutoCreate {
				return nil, fmt.Errorf("tenant %s: %w", name, ErrNotFound)
			}
			if err := r.Add(name); err != nil && !errors.Is(err, ErrExists) {
				return nil, err
			}
			continue
		}
		if t.busy != nil {
			busy := t.busy
			r.mu.Unlock()
			select {
			case <-busy:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("tenant %s: %w", name, ctx.Err())
			}
		}
		if t.u == nil {
			t.busy = make(chan struct{})
			r.ops.Add(1) // not closed: checked above, under the same lock
			r.mu.Unlock()
			u, err := r.openUnion(name, t.ledger)
			r.ops.Done()
			r.mu.Lock()
			close(t.busy)
			t.busy = nil
			t.u = u
			r.mu.Unlock()
			if err != nil {
				return nil, err
			}
			continue
		}
		t.refs++
		h := &Handle{r: r, t: t, u: t.u}
		r.mu.Unlock()
		return h, nil
	}
}

// openUnion opens the tenant's union over the shared lowers. union.Open
// takes paths, so the layout is checked descriptor-relative first and the
// upper's identity compared afterwards: a tenant directory swapped for a
// symbolic link is refused. (The window between the two checks closes when
// union can open layers from descriptors; see doc.go.)
//
// The union charges the tenant's ledger, which holds the upper's usage as
// counted at load or at the last reset: nothing changes the upper between
// that count and this open (the tenant is busy meanwhile).
func (r *Registry) openUnion(name string, ledger *Ledger) (*union.Union, error) {
	l, err := r.openLayers(name)
	if err != nil {
		return nil, err
	}
	defer l.close()
	var before unix.Stat_t
	if err := unix.Fstat(l.upper, &before); err != nil {
		return nil, err
	}
	upper := filepath.Join(r.dir, name, upperName)
	opts := union.Options{
		Upper:     upper,
		Workdir:   filepath.Join(r.dir, name, workName),
		Ownership: r.cfg.Ownership,
		Quota:     charger{ledger},
	}
	if r.lowers != nil {
		opts.LowerSet = r.lowers
	}
	u, err := union.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", name, err)
	}
	var after unix.Stat_t
	if err := unix.Lstat(upper, &after); err != nil || after.Dev != before.Dev || after.Ino != before.Ino {
		u.Close()
		return nil, fmt.Errorf("tenant %s: %s changed while it was opened; not served", name, upper)
	}
	return u, nil
}

// claim marks the tenant busy for a reset or remove, asks evict to end its
// connections, and waits until every Handle is released (or ctx ends:
// the tenant is then left as it was, with ErrBusy). An add or union open
// in progress is waited for; another reset or remove is ErrBusy. On
// success the union is closed and the tenant stays busy: the caller calls
// done.
func (r *Registry) claim(ctx context.Context, name string, evict func(string)) (t *tenant, done func(), err error) {
	if err := ValidName(name); err != nil {
		return nil, nil, err
	}
	r.mu.Lock()
	for {
		t = r.tenants[name]
		if t == nil {
			r.mu.Unlock()
			if r.closed {
				return nil, nil, ErrClosed
			}
			return nil, nil, fmt.Errorf("tenant %s: %w", name, ErrNotFound)
		}
		if t.claimed {
			r.mu.Unlock()
			return nil, nil, fmt.Errorf("tenant %s: another reset or remove is running: %w", name, ErrBusy)
		}
		if t.busy == nil {
			break
		}
		// Being added or having its union opened: short; wait.
		busy := t.busy
		r.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("tenant %s: %w", name, ctx.Err())
		}
		r.mu.Lock()
	}
	if err := r.begin(); err != nil {
		r.mu.Unlock()
		return nil, nil, err
	}
	t.busy, t.claimed = make(chan struct{}), true
	r.mu.Unlock()
	done = func() {
		r.mu.Lock()
		close(t.busy)
		t.busy, t.claimed = nil, false
		r.mu.Unlock()
		r.ops.Done()
	}
	if evict != nil {
		evict(name)
	}
	r.mu.Lock()
	for t.refs > 0 {
		if t.idle == nil {
			t.idle = make(chan struct{})
		}
		idle, refs := t.idle, t.refs
		r.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			done()
			return nil, nil, fmt.Errorf("tenant %s: %d connections still open: %w", name, refs, ErrBusy)
		}
		r.mu.Lock()
	}
	u := t.u
	t.u = nil
	r.mu.Unlock()
	if u != nil {
		u.Close()
	}
	return t, done, nil
}

// Reset is the factory reset: evict is called to end the tenant's
// connections (new ones wait meanwhile), and once all are gone its upper
// and work directories are replaced by empty ones, so the next Acquire
// sees the pristine lowers. The old directories are renamed aside first
// (so a crash leaves either the old upper or a fresh one, plus leftovers
// removed at the next start) and then removed without following any
// symbolic link or crossing a mount point. The quota and the tenant's own
// quota setting stay.
func (r *Registry) Reset(ctx context.Context, name string, evict func(string)) error {
	t, done, err := r.claim(ctx, name, evict)
	if err != nil {
		return err
	}
	defer done()
	tfd, err := r.openTenantDir(name)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	var aside []string
	for i, sub := range []string{upperName, workName} {
		trash := resetPfx + randomSuffix()
		if err := unix.Renameat(tfd, sub, tfd, trash); err != nil && err != unix.ENOENT {
			if i > 0 {
				// Put the upper back: a failed reset leaves the tenant
				// as it was.
				unix.Renameat(tfd, aside[0], tfd, upperName)
			}
			return r.layoutErr(name, sub, err)
		}
		aside = append(aside, trash)
	}
	// The fresh upper and work, in the directory the old ones were
	// renamed in (not DIR/NAME looked up again).
	dup, err := unix.Dup(tfd)
	if err != nil {
		return err
	}
	l, err := r.layersIn(name, dup)
	if err != nil {
		return err
	}
	m, err := Measure(l.upper)
	l.close()
	if err != nil {
		return fmt.Errorf("tenant %s: %w", name, err)
	}
	t.ledger.Recounted(m.Usage)
	for _, trash := range aside {
		if err := removeAllAt(tfd, trash); err != nil {
			return fmt.Errorf("tenant %s: reset: emptying the old %s/%s/%s: %w (the tenant is reset; the rest is removed at the next start)", name, r.dir, name, trash, err)
		}
	}
	return nil
}

// Remove ends the tenant's connections as Reset does, forgets it, and
// deletes DIR/NAME: it is renamed aside first, so the name is free at once
// and a crash leaves only a leftover that the next start removes.
func (r *Registry) Remove(ctx context.Context, name string, evict func(string)) error {
	_, done, err := r.claim(ctx, name, evict)
	if err != nil {
		return err
	}
	defer done()
	// Refuse a tenant directory that is not a directory now, rather
	// than remove whatever took its place.
	tfd, err := r.openTenantDir(name)
	if err != nil {
		return err
	}
	unix.Close(tfd)
	trash := removingPfx + name + "-" + randomSuffix()
	if len(trash) > MaxNameLen {
		trash = removingPfx + randomSuffix()
	}
	if err := unix.Renameat(r.dirfd, name, r.dirfd, trash); err != nil {
		return r.layoutErr(name, "", err)
	}
	r.mu.Lock()
	delete(r.tenants, name)
	r.mu.Unlock()
	if err := removeAllAt(r.dirfd, trash); err != nil {
		return fmt.Errorf("tenant %s: removed, but deleting %s/%s failed: %w (retried at the next start)", name, r.dir, trash, err)
	}
	return nil
}

// SetQuota gives the tenant its own quota, stored in DIR/NAME/quota;
// nil returns it to the default. It applies at once to later charges.
func (r *Registry) SetQuota(name string, q *Quota) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if q != nil && (q.Bytes < 0 || q.Inodes < 0) {
		return fmt.Errorf("tenant %s: negative quota", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	t := r.tenants[name]
	if t == nil {
		return fmt.Errorf("tenant %s: %w", name, ErrNotFound)
	}
	if t.busy != nil && t.ledger == nil {
		return fmt.Errorf("tenant %s: being added: %w", name, ErrBusy)
	}
	// Host I/O under r.mu, but only on the small quota file: a quota
	// change never waits behind a tree walk (those run unlocked).
	tfd, err := r.openTenantDir(name)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	if err := writeQuota(tfd, q); err != nil {
		return fmt.Errorf("tenant %s: write %s/%s/quota: %w", name, r.dir, name, err)
	}
	if q != nil {
		c := *q
		t.own = &c
	} else {
		t.own = nil
	}
	t.ledger.SetQuota(r.quotaOf(t))
	return nil
}

// Info is what List reports about a tenant.
type Info struct {
	Name  string `json:"name"`
	Usage Usage  `json:"usage"`
	Quota Quota  `json:"quota"`
	// OwnQuota is true when the tenant has its own quota rather than the
	// server's default.
	OwnQuota bool `json:"own_quota"`
	// Connections counts the tenant's unreleased Handles.
	Connections int `json:"connections"`
	// Busy is true while the tenant is being added, reset or removed.
	Busy bool `json:"busy"`
}

// List reports every tenant, sorted by name.
func (r *Registry) List() []Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Info, 0, len(r.tenants))
	for _, t := range r.tenants {
		in := Info{Name: t.name, Connections: t.refs, Busy: t.busy != nil, OwnQuota: t.own != nil}
		if t.ledger != nil {
			in.Usage, in.Quota = t.ledger.Used(), t.ledger.Quota()
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close refuses new operations, waits for those in progress (a reset
// waiting for connections waits until its context ends), and closes every
// tenant's union and the directory. Call it after the server stopped
// serving: Handles must not be used afterwards.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.ops.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tenants {
		if t.u != nil {
			t.u.Close()
			t.u = nil
		}
	}
	if r.lowers != nil {
		r.lowers.Close()
	}
	return unix.Close(r.dirfd)
}

func randomSuffix() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
