package union

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// Options describe a union.
type Options struct {
	// Lowers are the read-only layers, topmost first.
	Lowers []string
	// Upper is the writable layer; empty serves the lowers read-only.
	Upper string
	// Workdir is an empty directory on the upper's filesystem, used to
	// build copies and markers before they are renamed into place.
	// Required when Upper is set.
	Workdir string
	// Ownership says how owners and modes that the server cannot set on
	// the host are kept. The zero value picks Passthrough when running
	// as root and MappedXattr otherwise.
	Ownership Ownership
	// RedirectDir says whether renaming a directory with lower parts
	// writes a redirect (RedirectOn) or fails with EXDEV (the zero value,
	// RedirectOff). Redirects in the layers are followed either way.
	RedirectDir RedirectDir
	// LowerSet, if set, is the lower side, opened once (OpenLowers) and
	// shared with other unions; Lowers must then be empty. The union does
	// not close it.
	LowerSet *LowerSet
	// Metacopy: a change of owner, mode, times or xattrs of a lower
	// regular file copies only its metadata (see metacopy.go), as
	// overlayfs's metacopy=on. Off (the zero value), as overlayfs.
	Metacopy bool
	// Quota, if set, is charged what the upper layer uses and refuses a
	// change past its limit with EDQUOT (quota.go). It must start at the
	// upper's current usage as tenant.Measure counts it.
	Quota Quota
}

// Ownership is how a union stores the uid, gid and mode a client sets.
type Ownership int

const (
	// OwnershipAuto: Passthrough as root, MappedXattr otherwise.
	OwnershipAuto Ownership = iota
	// Passthrough stores owners and modes on the host as they are.
	Passthrough
	// MappedXattr stores them in QEMU's mapped-xattr format
	// (user.virtfs.uid/gid/mode/rdev), for unprivileged servers.
	MappedXattr
)

// Union is a layer stack. Its methods are safe for concurrent use.
type Union struct {
	upper  *upperLayer   // nil when read-only
	lowers []*lowerLayer // lowerSet.layers

	// lowerSet holds the lower layers and what is cached about them,
	// shared with other unions unless ownsLowers (lowerset.go).
	lowerSet   *LowerSet
	ownsLowers bool
	work       int // fd of the work directory (WORKDIR/work); -1 when read-only

	// ns is the xattr namespace of the overlay markers this union writes
	// and hides ("trusted.overlay." as root, "user.overlay." otherwise).
	ns             whiteout.Namespace
	whiteoutFormat whiteout.Format
	ownership      Ownership
	redirectDir    RedirectDir
	metacopy       bool
	privileged     bool
	devs           *devIndex // lowerSet.devs
	copyups        copyUpLocks

	// euid, egid: the server's, which every object it makes starts with
	// (create.go).
	euid, egid uint32

	// noEmptyPathLink: linking an O_TMPFILE by its descriptor was refused
	// once (no CAP_DAC_READ_SEARCH); copy-ups link through /proc since.
	noEmptyPathLink atomic.Bool
	// nsMu serializes the checks and changes of namespace operations and
	// the final step of copy-ups (see dir.go); never held across a copy-up.
	nsMu      sync.Mutex
	closeOnce sync.Once
	traps     map[inodeKey]bool // layer roots and work dir (ident.go); read-only after Open

	// nodes holds the one Node of each object callers hold (nodetable.go).
	nodes nodeTable

	// nsGen counts completed namespace changes; listings cache merged
	// directory listings against it (listcache.go).
	nsGen    atomic.Uint64
	listings listingCache

	// lowerNames caches what lower directories hold (lowercache.go);
	// lowerSet.names.
	lowerNames *nameSets

	lock *LayerLock // on the upper and work directories (worklock.go)

	quota quotaState // usage accounting (quota.go)
}

// Open validates the options and opens the layers. Nothing is written to the
// upper layer or the work directory until every check has passed.
func Open(opts Options) (*Union, error) {
	if len(opts.Lowers) == 0 && opts.LowerSet == nil && opts.Upper == "" {
		return nil, errors.New("union: no layers: give at least one lower or an upper")
	}
	if len(opts.Lowers) > 0 && opts.LowerSet != nil {
		return nil, errors.New("union: give the lowers either as paths (Lowers) or opened (LowerSet), not both")
	}
	if opts.Upper != "" && opts.Workdir == "" {
		return nil, errors.New("union: an upper layer needs a work directory (workdir)")
	}
	if opts.Metacopy && opts.RedirectDir != RedirectOn {
		// A renamed metadata-only copy finds its data by a redirect.
		return nil, errors.New("union: metacopy=on needs redirect_dir=on, as in overlayfs")
	}
	u := &Union{work: -1}
	u.privileged = os.Geteuid() == 0
	u.euid, u.egid = uint32(os.Geteuid()), uint32(os.Getegid())
	u.ownership = opts.Ownership
	u.redirectDir = opts.RedirectDir
	u.metacopy = opts.Metacopy
	if u.ownership == OwnershipAuto {
		u.ownership = MappedXattr
		if u.privileged {
			u.ownership = Passthrough
		}
	}
	if u.privileged {
		u.ns, u.whiteoutFormat = whiteout.Trusted, whiteout.DeviceWhiteouts
	} else {
		u.ns, u.whiteoutFormat = whiteout.User, whiteout.XattrWhiteouts
	}

	var upperAbs, workAbs string
	var err error
	if opts.Upper != "" {
		if upperAbs, err = checkLayerDir("upperdir", opts.Upper); err != nil {
			return nil, err
		}
		if workAbs, err = checkLayerDir("workdir", opts.Workdir); err != nil {
			return nil, err
		}
		if within(workAbs, upperAbs) || within(upperAbs, workAbs) {
			return nil, fmt.Errorf("union: workdir %q and upperdir %q must not contain each other", opts.Workdir, opts.Upper)
		}
		var su, sw unix.Stat_t
		if err := unix.Stat(upperAbs, &su); err != nil {
			return nil, fmt.Errorf("union: upperdir %q: %w", opts.Upper, err)
		}
		if err := unix.Stat(workAbs, &sw); err != nil {
			return nil, fmt.Errorf("union: workdir %q: %w", opts.Workdir, err)
		}
		if su.Dev != sw.Dev {
			return nil, fmt.Errorf("union: workdir %q is not on the same filesystem as upperdir %q", opts.Workdir, opts.Upper)
		}
	}
	lowerPaths := opts.Lowers
	if opts.LowerSet != nil {
		lowerPaths = opts.LowerSet.paths
	}
	var abs []string
	for _, l := range lowerPaths {
		a, err := checkLayerDir("lowerdir", l)
		if err != nil {
			return nil, err
		}
		if upperAbs != "" && (within(a, upperAbs) || within(upperAbs, a)) {
			return nil, fmt.Errorf("union: upperdir %q and lowerdir %q must not contain each other (the lower would be written)", opts.Upper, l)
		}
		if workAbs != "" && (within(a, workAbs) || within(workAbs, a)) {
			return nil, fmt.Errorf("union: workdir %q and lowerdir %q must not contain each other", opts.Workdir, l)
		}
		abs = append(abs, a)
	}

	ok := false
	defer func() {
		if !ok {
			u.Close()
		}
	}()
	u.lowerSet = opts.LowerSet
	if u.lowerSet == nil {
		// A union of its own: the upper's filesystem is numbered first in
		// stable ids, as OpenLowers's sameFS.
		if u.lowerSet, err = openLowers(abs, opts.Lowers, upperAbs); err != nil {
			return nil, err
		}
		u.ownsLowers = true
	}
	u.lowers = u.lowerSet.layers
	u.devs = &u.lowerSet.devs
	u.lowerNames = &u.lowerSet.names
	if upperAbs != "" {
		// Before anything is written: another process may be using them.
		if u.lock, err = LockLayers(upperAbs, workAbs); err != nil {
			return nil, fmt.Errorf("union: %w", err)
		}
		up, err := openUpperLayer(upperAbs)
		if err != nil {
			return nil, fmt.Errorf("union: upperdir %q: %w", opts.Upper, err)
		}
		u.upper = up
		if u.work, err = openWorkDir(workAbs); err != nil {
			return nil, fmt.Errorf("union: workdir %q: %w", opts.Workdir, err)
		}
	}
	if err := u.initQuota(opts.Quota); err != nil {
		return nil, fmt.Errorf("union: workdir %q: %w", opts.Workdir, err)
	}
	if err := u.devs.init(u); err != nil {
		return nil, err
	}
	if err := u.setTraps(); err != nil {
		return nil, err
	}
	ok = true
	return u, nil
}

// checkLayerDir resolves a layer directory's path (absolute, symbolic
// links resolved) and checks it is a directory.
func checkLayerDir(role, dir string) (string, error) {
	if dir == "" {
		// filepath.Abs would make it the current directory.
		return "", fmt.Errorf("union: empty %s (an empty element in lowerdir=A::B?)", role)
	}
	a, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("union: %s %q: %w", role, dir, err)
	}
	a, err = filepath.EvalSymlinks(a)
	if err != nil {
		return "", fmt.Errorf("union: %s %q: %w", role, dir, err)
	}
	fi, err := os.Stat(a)
	if err != nil {
		return "", fmt.Errorf("union: %s %q: %w", role, dir, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("union: %s %q is not a directory", role, dir)
	}
	return a, nil
}

// within reports whether path p is dir or lies below it.
func within(p, dir string) bool {
	if p == dir {
		return true
	}
	return strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// ReadOnly reports whether the union has no upper layer.
func (u *Union) ReadOnly() bool { return u.upper == nil }

// Close closes the layers. Nodes must not be used afterwards.
func (u *Union) Close() error {
	u.closeOnce.Do(func() {
		if u.ownsLowers {
			u.lowerSet.Close()
		}
		if u.upper != nil {
			unix.Close(u.upper.fd)
		}
		if u.work >= 0 {
			unix.Close(u.work)
		}
		u.lock.Release()
	})
	return nil
}

// StatFS returns the statistics of the upper layer's filesystem (of the top
// lower layer when read-only).
func (u *Union) StatFS() (unix.Statfs_t, error) {
	var st unix.Statfs_t
	fd := -1
	if u.upper != nil {
		fd = u.upper.fd
	} else {
		fd = u.lowers[0].fd
	}
	err := unix.Fstatfs(fd, &st)
	return st, err
}

// openWorkDir opens WORKDIR/work, creating it, as overlayfs lays it out.
// Leftovers of an interrupted copy-up are removed: they were never visible.
// Only names the union makes there ("#hex") are touched, so a workdir given
// by mistake (a home directory with a "work" folder) loses nothing.
func openWorkDir(workdir string) (int, error) {
	dfd, err := unix.Open(workdir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dfd)
	if err := unix.Mkdirat(dfd, "work", 0o700); err != nil && err != unix.EEXIST {
		return -1, err
	}
	fd, err := unix.Openat(dfd, "work", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := removeWorkLeftovers(fd); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("clean work directory: %w", err)
	}
	return fd, nil
}

// removeWorkLeftovers removes the objects a copy-up or marker swap left in
// the work directory when it was interrupted.
func removeWorkLeftovers(work int) error {
	names, err := readNames(work)
	if err != nil {
		return err
	}
	for _, name := range names {
		if isWorkName(name) {
			removeWork(work, name)
		}
	}
	return nil
}
