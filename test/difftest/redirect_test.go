package difftest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRedirectsAreExercised checks that the default seeds, run with
// redirect_dir=on, rename merged directories for real: their uppers must
// end with relative redirects (renames within a directory) and absolute
// ones (moves to another directory). Without this the redirect runs of
// TestDifferential could pass without ever writing one.
func TestRedirectsAreExercised(t *testing.T) {
	requireRoot(t)
	kinds := map[string]int{}
	for seed := int64(1); seed <= 24; seed++ {
		upper := seedUpper(t, seed, redirectFeatures)
		for _, r := range upperRedirects(t, upper) {
			if strings.HasPrefix(r, "/") {
				kinds["absolute"]++
			} else {
				kinds["relative"]++
			}
		}
	}
	t.Logf("redirects left in the uppers of seeds 1-24: %v", kinds)
	if kinds["absolute"] < 2 || kinds["relative"] < 2 {
		t.Errorf("the generator renamed too few merged directories: redirects %v, want at least 2 of each kind", kinds)
	}
}

// upperRedirects returns the redirect xattrs found in the tree at dir.
func upperRedirects(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		buf := make([]byte, 4096)
		if n, err := unix.Lgetxattr(p, "trusted.overlay.redirect", buf); err == nil {
			out = append(out, string(buf[:n]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHostileRedirects plants redirect xattrs that a careless reader
// would follow out of the layers or trip over (parent components,
// malformed values, missing or non-directory targets, a directory's own
// ancestors) on a directory of the upper layer and of a middle lower
// layer, and checks that union shows exactly what the kernel's overlayfs
// shows (errors included: EINVAL for a malformed value, EACCES for "."
// and ".."), and that nothing outside the layers is read.
func TestHostileRedirects(t *testing.T) {
	requireOverlay(t)
	values := []string{
		"a", "/a", "/a/sub", "/x/d", "/x", "..", ".", "../a", "/../a", "/a/../b",
		"/..", "/a/./sub", "/nonexistent", "nonexistent", "/secret", "/a/f",
		"a/sub", "//a", "/a/", "/", "", "/" + strings.Repeat("n", 300), strings.Repeat("n", 300),
		"/../../../../../../../../etc", "../../../../etc",
	}
	for _, place := range []string{"upper", "lower1"} {
		for _, v := range values {
			t.Run(fmt.Sprintf("%s/%q", place, v), func(t *testing.T) {
				checkHostileRedirect(t, place, v)
			})
		}
	}
}

func checkHostileRedirect(t *testing.T, place, value string) {
	t.Helper()
	checkHostileRedirectMarks(t, []redirectMark{{place, "x/d", value}})
}

// redirectMark is a redirect planted on directory dir (made if missing) of
// layer "upper" or "lower1".
type redirectMark struct{ layer, dir, value string }

// TestRedirectLoops plants redirects that point at each other, within a
// layer and between two layers, and at themselves: a lookup must end (each
// redirect only steers the layers below its own) and show what the
// kernel's overlayfs shows.
func TestRedirectLoops(t *testing.T) {
	requireOverlay(t)
	cases := map[string][]redirectMark{
		"upper-to-lower1-and-back": {{"upper", "a", "/b"}, {"lower1", "b", "/a"}},
		"lower1-pair":              {{"lower1", "a", "/b"}, {"lower1", "b", "/a"}},
		"upper-pair-relative":      {{"upper", "a", "b"}, {"upper", "b", "a"}},
		"self-absolute":            {{"upper", "x/d", "/x/d"}},
		"self-relative":            {{"lower1", "x/d", "d"}},
		"into-own-child":           {{"upper", "a", "/a/sub"}},
	}
	for name, marks := range cases {
		t.Run(name, func(t *testing.T) { checkHostileRedirectMarks(t, marks) })
	}
}

// checkHostileRedirectMarks plants marks on a three-layer union (upper,
// lower1, lower2; lower2 holds a/sub, a/f, b, x/d/g and a secret) and
// compares union's tree with the kernel's, errnos included.
func checkHostileRedirectMarks(t *testing.T, marks []redirectMark) {
	t.Helper()
	build := func(root string) (lowers []string, upper, work string) {
		ds := mkdirs(t, root, "lower1", "lower2", "upper", "work")
		l1, l2 := ds[0], ds[1]
		for _, p := range []string{"a/sub", "b", "x/d"} {
			must(t, os.MkdirAll(filepath.Join(l2, p), 0o755))
		}
		must(t, os.WriteFile(filepath.Join(l2, "a/f"), []byte("in a\n"), 0o644))
		must(t, os.WriteFile(filepath.Join(l2, "secret"), []byte("x\n"), 0o600))
		must(t, os.WriteFile(filepath.Join(l2, "x/d/g"), []byte("in x/d\n"), 0o644))
		must(t, os.MkdirAll(filepath.Join(l1, "x"), 0o755))
		for _, m := range marks {
			holder := filepath.Join(ds[2], m.dir)
			if m.layer == "lower1" {
				holder = filepath.Join(l1, m.dir)
			}
			must(t, os.MkdirAll(holder, 0o755))
			must(t, unix.Setxattr(holder, "trusted.overlay.redirect", []byte(m.value), 0))
		}
		return []string{l1, l2}, ds[2], ds[3]
	}
	dir := scratchDir(t)
	must(t, os.Mkdir(filepath.Join(dir, "k"), 0o755))
	must(t, os.Mkdir(filepath.Join(dir, "u"), 0o755))
	kl, ku, kw := build(filepath.Join(dir, "k"))
	ul, uu, uw := build(filepath.Join(dir, "u"))
	sentinel := makeSentinel(t, dir)
	before := snapshotHost(t, sentinel)

	mnt := filepath.Join(dir, "mnt")
	must(t, os.Mkdir(mnt, 0o755))
	u, err := openUnionFS(redirectFeatures.options(ul, uu, uw))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	// The kernel refuses to show one lower directory under two names (a
	// redirect to /a makes x/d another name of /a): whichever of the two
	// is looked up second answers ESTALE, by the order of its inode
	// cache. So the redirected directory is compared on a fresh mount
	// first, then the whole tree on another, where an ESTALE is accepted
	// only at or below x/d, already compared (and the kernel then leaves
	// d out of the listing of x, as it drops entries it fails to look up).
	withKernel := func(fn func(k *kernelFS)) {
		unmount := mountOverlay(t, kl, ku, kw, mnt, redirectFeatures)
		k, err := openKernelFS(mnt)
		if err != nil {
			t.Fatal(err)
		}
		fn(k)
		k.Close()
		if err := unmount(); err != nil {
			t.Fatal(err)
		}
	}
	// Each marked directory on a fresh mount, where the kernel has not
	// met its lower parts under another name yet.
	marked := map[string]bool{}
	for _, m := range marks {
		if marked[m.dir] {
			continue
		}
		marked[m.dir] = true
		withKernel(func(k *kernelFS) {
			kt := captureTreeFrom(k, m.dir)
			t.Logf("kernel shows %s (fresh mount) as: %s", m.dir, kt[m.dir])
			for _, d := range diffTrees(kt, captureTreeFrom(u, m.dir), 0) {
				t.Errorf("%s", d)
			}
		})
	}
	withKernel(func(k *kernelFS) {
		for _, d := range diffTrees(captureTree(k), captureTree(u), 0) {
			if estaleSecondName(d, marked) {
				continue
			}
			t.Errorf("%s", d)
		}
	})
	requireUnchanged(t, "sentinel", before, snapshotHost(t, sentinel))
}

// estaleSecondName reports whether d is the one difference the kernel's
// cache order makes: overlayfs keys a merged directory's inode by its
// topmost lower directory, so when a redirect makes a lower directory show
// under a second name, whichever name is looked up second answers ESTALE
// (and is then left out of its parent's listing), by what its inode cache
// holds at that moment. union9p shows both; each was compared with the
// kernel on a fresh mount before.
func estaleSecondName(d treeDiff, marked map[string]bool) bool {
	for dir := range marked {
		if (d.Path == dir || strings.HasPrefix(d.Path, dir+"/")) && (d.Kernel == "lstat: ESTALE" || d.Kernel == absent) {
			return true
		}
		parent, base := filepath.Split(dir)
		if d.Path == strings.TrimSuffix(parent, "/") && d.Kernel == strings.Replace(d.Union, " "+base+":d]", "]", 1) {
			return true
		}
	}
	return false
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// seedUpper runs the default seed's 200 operations through union with the
// features f over fresh copies of its layers and returns the upper left.
func seedUpper(t *testing.T, seed int64, f features) string {
	t.Helper()
	layers := generateLayers(seed)
	dir := scratchDir(t)
	lowers := mkdirs(t, dir, "lower1", "lower2")
	for i, l := range layers {
		materialize(t, l, lowers[i])
	}
	dirs := mkdirs(t, dir, "upper", "work")
	fs, err := openUnionFS(f.options(lowers, dirs[0], dirs[1]))
	if err != nil {
		t.Fatal(err)
	}
	runOps(fs, generateOps(seed, layers, 200))
	fs.Close()
	return dirs[0]
}
