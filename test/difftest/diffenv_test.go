package difftest

import (
	"os"
	"path/filepath"
	"testing"
)

// diffEnv is one run of the differential test: two identical copies of
// generated lower layers, one under union and one under a kernel overlay
// mount, each with its own empty upper, and a sentinel directory beside
// them that nothing may touch.
type diffEnv struct {
	layers       [2]layerSpec
	unionLowers  []string
	kernelLowers []string
	unionUpper   string
	kernelUpper  string
	sentinel     string
	kernel       *kernelFS
	union        *unionFS
	unmount      func() error
	// before holds snapshots of what must stay unchanged, by path.
	before map[string]hostSnapshot
}

// walkMode is how both sides reach the objects of an operation.
type walkMode int

const (
	// freshWalks walks every path from the root for every operation.
	freshWalks walkMode = iota
	// heldDirs keeps the directories walked through and starts later
	// walks from them, as a client keeps fids; an operation that removes
	// or renames a path drops what is held at and below it.
	heldDirs
)

func (m walkMode) String() string { return [...]string{"fresh-walks", "held-dirs"}[m] }

func newDiffEnv(t *testing.T, layers [2]layerSpec, mode walkMode, f features) *diffEnv {
	t.Helper()
	dir := scratchDir(t)
	e := &diffEnv{layers: layers, before: map[string]hostSnapshot{}}
	e.unionLowers = mkdirs(t, dir, "union-lower1", "union-lower2")
	e.kernelLowers = mkdirs(t, dir, "kernel-lower1", "kernel-lower2")
	for i, l := range layers {
		materialize(t, l, e.unionLowers[i])
		materialize(t, l, e.kernelLowers[i])
	}
	e.sentinel = makeSentinel(t, dir)

	for i := range layers {
		u, k := snapshotHost(t, e.unionLowers[i]), snapshotHost(t, e.kernelLowers[i])
		if d := diffSnapshots(k, u); len(d) > 0 {
			t.Fatalf("the two copies of lower layer %d differ (test harness bug): %v", i+1, d)
		}
		e.before[e.unionLowers[i]] = u
		e.before[e.kernelLowers[i]] = k
	}
	e.before[e.sentinel] = snapshotHost(t, e.sentinel)

	dirs := mkdirs(t, dir, "union-upper", "union-work", "kernel-upper", "kernel-work", "kernel-mnt")
	e.unionUpper, e.kernelUpper = dirs[0], dirs[2]
	e.unmount = mountOverlay(t, e.kernelLowers, dirs[2], dirs[3], dirs[4], f)
	var err error
	if e.kernel, err = openKernelFS(dirs[4]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.kernel.Close() })
	if e.union, err = openUnionFS(f.options(e.unionLowers, dirs[0], dirs[1])); err != nil {
		t.Fatalf("union.Open: %v", err)
	}
	t.Cleanup(func() { e.union.Close() })
	if mode == heldDirs {
		e.kernel.holdDirs()
		e.union.holdDirs()
	}
	return e
}

// forget drops what both sides hold at and below p.
func (e *diffEnv) forget(p string) {
	e.kernel.Forget(p)
	e.union.Forget(p)
}

// requireUntouched fails the test if a lower layer (of either side) or the
// sentinel changed since the environment was made.
func (e *diffEnv) requireUntouched(t *testing.T) {
	t.Helper()
	for dir, before := range e.before {
		requireUnchanged(t, dir, before, snapshotHost(t, dir))
	}
}

// makeSentinel creates dir/sentinel with a file, a directory and xattrs:
// something outside every layer that a union that escaped its layers
// would be likely to change.
func makeSentinel(t *testing.T, dir string) string {
	t.Helper()
	s := filepath.Join(dir, "sentinel")
	if err := os.MkdirAll(filepath.Join(s, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"secret", "sub/secret"} {
		if err := os.WriteFile(filepath.Join(s, name), []byte("outside the layers\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return s
}
