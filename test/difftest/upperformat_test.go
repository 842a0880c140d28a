package difftest

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnionUpperMountsInKernel checks that union writes its upper layer in
// the kernel's format: after a randomized sequence of operations through
// union, a kernel overlay mount of the same lowers and that upper (with a
// fresh workdir) shows exactly the tree union showed, and so does union
// itself when opened again on it. It runs for each set of features, so
// redirects union writes are read by the kernel mounted with them.
func TestUnionUpperMountsInKernel(t *testing.T) {
	requireOverlay(t)
	for _, f := range allFeatures {
		for _, seed := range formatSeeds(t) {
			t.Run(fmt.Sprintf("%s/seed-%d", f.name, seed), func(t *testing.T) {
				checkUpperFormat(t, seed, f, unionThenKernel)
			})
		}
	}
}

// TestKernelUpperOpensInUnion is the reverse: an upper written through a
// kernel overlay mount, opened by union on the same lowers, shows the tree
// the kernel showed (redirects the kernel wrote included).
func TestKernelUpperOpensInUnion(t *testing.T) {
	requireOverlay(t)
	for _, f := range allFeatures {
		for _, seed := range formatSeeds(t) {
			t.Run(fmt.Sprintf("%s/seed-%d", f.name, seed), func(t *testing.T) {
				checkUpperFormat(t, seed, f, kernelThenUnion)
			})
		}
	}
}

func formatSeeds(t *testing.T) []int64 {
	t.Helper()
	cfg := diffConfigFromEnv(t)
	if len(cfg.seeds) > 12 && testing.Short() {
		return cfg.seeds[:12]
	}
	return cfg.seeds
}

// upperScenario writes an upper through one implementation and reads it
// through the other. It returns how the tree read differs from the tree
// written (as the kernel and union sides of treeDiff), and checks itself
// that the lowers did not change.
type upperScenario func(t *testing.T, layers [2]layerSpec, f features, ops []op) []treeDiff

func checkUpperFormat(t *testing.T, seed int64, f features, scenario upperScenario) {
	t.Helper()
	cfg := diffConfigFromEnv(t)
	layers := generateLayers(seed)
	ops := generateOps(seed, layers, cfg.ops)
	diffs := scenario(t, layers, f, ops)
	if len(diffs) == 0 {
		return
	}
	var b strings.Builder
	for i, d := range diffs {
		if i == 10 {
			fmt.Fprintf(&b, "... and %d more\n", len(diffs)-i)
			break
		}
		fmt.Fprintf(&b, "%s\n", d)
	}
	t.Errorf("seed %d: the tree differs (replay: UNION9P_DIFF_SEED=%d UNION9P_DIFF_OPS=%d):\n%s", seed, seed, cfg.ops, b.String())
	if !cfg.minimize {
		t.Logf("set UNION9P_DIFF_MINIMIZE=1 to shrink the sequence")
		return
	}
	want := diffs[0].String()
	runs := 0
	shortest := shrink(ops, func(candidate []op) bool {
		runs++
		found := false
		t.Run(fmt.Sprintf("replay-%d", runs), func(t *testing.T) {
			d := scenario(t, layers, f, candidate)
			found = len(d) > 0 && d[0].String() == want
		})
		return found
	})
	logShrunk(t, seed, runs, shortest, want, []string{diffs[0].Path}, layers)
}

// formatEnv is a lower stack with one upper, and the directories to mount
// or open it with.
type formatEnv struct {
	lowers              []string
	upper, work1, work2 string
	mnt                 string
	lowersBefore        []hostSnapshot
	features            features
}

func newFormatEnv(t *testing.T, layers [2]layerSpec, f features) *formatEnv {
	t.Helper()
	dir := scratchDir(t)
	e := &formatEnv{lowers: mkdirs(t, dir, "lower1", "lower2"), features: f}
	for i, l := range layers {
		materialize(t, l, e.lowers[i])
		e.lowersBefore = append(e.lowersBefore, snapshotHost(t, e.lowers[i]))
	}
	dirs := mkdirs(t, dir, "upper", "work1", "work2", "mnt")
	e.upper, e.work1, e.work2, e.mnt = dirs[0], dirs[1], dirs[2], dirs[3]
	return e
}

func (e *formatEnv) requireLowersUntouched(t *testing.T) {
	t.Helper()
	for i, l := range e.lowers {
		requireUnchanged(t, filepath.Base(l), e.lowersBefore[i], snapshotHost(t, l))
	}
}

// withUnion opens union on the env's layers with the given workdir and
// runs fn on it.
func (e *formatEnv) withUnion(t *testing.T, work string, fn func(fs *unionFS)) {
	t.Helper()
	fs, err := openUnionFS(e.features.options(e.lowers, e.upper, work))
	if err != nil {
		t.Fatalf("union.Open: %v", err)
	}
	defer fs.Close()
	fn(fs)
}

// withKernel mounts the env's layers with the given workdir and runs fn
// on the mount.
func (e *formatEnv) withKernel(t *testing.T, work string, fn func(fs *kernelFS)) {
	t.Helper()
	unmount := mountOverlay(t, e.lowers, e.upper, work, e.mnt, e.features)
	fs, err := openKernelFS(e.mnt)
	if err != nil {
		t.Fatal(err)
	}
	fn(fs)
	fs.Close()
	if err := unmount(); err != nil {
		t.Fatalf("unmount: %v", err)
	}
}

// runOps applies ops to fs alone, skipping those a client would not send
// for the object's type (see appliesTo; a write would block on a FIFO).
func runOps(fs fsys, ops []op) {
	for _, o := range ops {
		if o.needsObject() {
			if fi, err := fs.Lstat(o.Path); err == nil && !o.appliesTo(fi.typ()) {
				continue
			}
		}
		o.apply(fs)
	}
}

func unionThenKernel(t *testing.T, layers [2]layerSpec, f features, ops []op) []treeDiff {
	t.Helper()
	e := newFormatEnv(t, layers, f)
	var written, reopened, mounted mergedTree
	e.withUnion(t, e.work1, func(fs *unionFS) {
		runOps(fs, ops)
		written = captureTree(fs)
	})
	e.withUnion(t, e.work1, func(fs *unionFS) { reopened = captureTree(fs) })
	e.withKernel(t, e.work2, func(fs *kernelFS) { mounted = captureTree(fs) })
	e.requireLowersUntouched(t)
	if d := diffTrees(reopened, written, 0); len(d) > 0 {
		t.Errorf("union opened again on its own upper shows another tree (kernel: the reopened union; union: as written):\n%s", d[0])
	}
	return diffTrees(mounted, written, 0)
}

func kernelThenUnion(t *testing.T, layers [2]layerSpec, f features, ops []op) []treeDiff {
	t.Helper()
	e := newFormatEnv(t, layers, f)
	var written, opened mergedTree
	e.withKernel(t, e.work1, func(fs *kernelFS) {
		runOps(fs, ops)
		written = captureTree(fs)
	})
	e.withUnion(t, e.work2, func(fs *unionFS) { opened = captureTree(fs) })
	e.requireLowersUntouched(t)
	return diffTrees(written, opened, 0)
}
