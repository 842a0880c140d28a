package difftest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// features is a set of overlayfs options and the union options that
// imitate them. Every set keeps index=off: union has no inode index (hard
// links of lowers break on copy-up, as without overlayfs's index).
type features struct {
	name   string // for test names
	kernel string // overlay mount options
	union  func(*union.Options)
}

var (
	// plainFeatures: no redirects (directory renames with lower parts
	// fail with EXDEV), no metadata-only copy-up.
	plainFeatures = features{"plain", "redirect_dir=off,index=off,metacopy=off", func(*union.Options) {}}
	// redirectFeatures: directory renames write redirects.
	redirectFeatures = features{"redirect", "redirect_dir=on,index=off,metacopy=off", func(o *union.Options) { o.RedirectDir = union.RedirectOn }}
	// metacopyFeatures: metadata-only copy-up (which needs redirects).
	metacopyFeatures = features{"metacopy", "redirect_dir=on,index=off,metacopy=on", func(o *union.Options) {
		o.RedirectDir, o.Metacopy = union.RedirectOn, true
	}}
	// allFeatures lists the sets the differential tests run with.
	allFeatures = []features{plainFeatures, redirectFeatures, metacopyFeatures}
)

// options returns union options for the layers with f's features.
func (f features) options(lowers []string, upper, work string) union.Options {
	o := union.Options{Lowers: lowers, Upper: upper, Workdir: work}
	f.union(&o)
	return o
}

// requireRoot skips the test unless it runs as root, which whiteouts
// (mknod), trusted.* xattrs and mounting need.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: whiteouts are device nodes, opaque markers are trusted.* xattrs, and the reference is a kernel overlay mount")
	}
}

// requireOverlay skips the test unless it runs as root and the kernel can
// mount an overlay with overlayOptions on the scratch filesystem.
func requireOverlay(t *testing.T) {
	t.Helper()
	requireRoot(t)
	dir := scratchDir(t)
	var lowers []string
	for _, name := range []string{"lower", "upper", "work", "mnt"} {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lowers = append(lowers, filepath.Join(dir, "lower"))
	opts := overlayMountData(lowers, filepath.Join(dir, "upper"), filepath.Join(dir, "work"), plainFeatures)
	mnt := filepath.Join(dir, "mnt")
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		t.Skipf("kernel overlay mount impossible here (mount -t overlay -o %s: %v)", opts, err)
	}
	if err := unmount(mnt); err != nil {
		t.Fatalf("unmount probe overlay: %v", err)
	}
}

func overlayMountData(lowers []string, upper, work string, f features) string {
	return "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work + "," + f.kernel
}

// mountOverlay mounts a kernel overlay of lowers (topmost first), upper and
// work at mnt, with the features f. The returned function unmounts it; it
// is safe to call more than once, and the test's cleanup calls it too.
func mountOverlay(t *testing.T, lowers []string, upper, work, mnt string, f features) (unmountFn func() error) {
	t.Helper()
	opts := overlayMountData(lowers, upper, work, f)
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		t.Fatalf("mount -t overlay -o %s %s: %v", opts, mnt, err)
	}
	mounted := true
	unmountFn = func() error {
		if !mounted {
			return nil
		}
		mounted = false
		return unmount(mnt)
	}
	t.Cleanup(func() {
		if err := unmountFn(); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return unmountFn
}

func unmount(mnt string) error {
	err := unix.Unmount(mnt, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(mnt, unix.MNT_DETACH)
	}
	return err
}

// scratchDir returns a new empty directory on /tmp's filesystem, removed
// when the test ends. Unlike t.TempDir its path never holds ',' or ':',
// which overlay mount options cannot carry.
func scratchDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "union9p-difftest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove scratch dir: %v", err)
		}
	})
	return dir
}

// mkdirs creates each of names in dir and returns their paths.
func mkdirs(t *testing.T, dir string, names ...string) []string {
	t.Helper()
	var out []string
	for _, name := range names {
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}
