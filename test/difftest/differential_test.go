package difftest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDifferential runs randomized operation sequences through union and
// through a kernel overlay mount of identical copies of the same generated
// layers, once for each set of features (allFeatures: without redirects,
// with redirect_dir=on, ...; index=off always). Every
// outcome (errno included, and what reads return) must agree, the merged
// trees must agree every few operations and at the end, and neither the
// lower layers nor a sentinel directory beside them may change.
func TestDifferential(t *testing.T) {
	requireOverlay(t)
	cfg := diffConfigFromEnv(t)
	start := time.Now()
	for _, f := range allFeatures {
		t.Run(f.name, func(t *testing.T) {
			for _, seed := range cfg.seeds {
				for _, mode := range []walkMode{freshWalks, heldDirs} {
					t.Run(fmt.Sprintf("seed-%d/%s", seed, mode), func(t *testing.T) {
						runSeed(t, seed, mode, f, cfg)
					})
				}
			}
		})
	}
	t.Logf("%d seeds x %d operations, twice, for %d feature sets, in %v", len(cfg.seeds), cfg.ops, len(allFeatures), time.Since(start).Round(time.Millisecond))
}

// runSeed runs one seed's sequence on both sides and reports how they
// disagreed.
func runSeed(t *testing.T, seed int64, mode walkMode, f features, cfg diffConfig) {
	layers := generateLayers(seed)
	ops := generateOps(seed, layers, cfg.ops)
	env := newDiffEnv(t, layers, mode, f)
	divs := runDiff(env, ops, cfg.treeEvery)
	if err := env.unmount(); err != nil {
		t.Errorf("unmount kernel overlay: %v", err)
	}
	env.requireUntouched(t)
	if len(divs) == 0 {
		return
	}
	var b strings.Builder
	for _, d := range divs {
		fmt.Fprintf(&b, "%s\n  the operations up to it:\n%s", d, describeOps(ops, d.Index-12, d.Index))
	}
	t.Errorf("seed %d, %s, %s: union and the kernel disagree (replay: UNION9P_DIFF_SEED=%d UNION9P_DIFF_OPS=%d go test ./test/difftest -run 'TestDifferential/^%s$/^seed-%d$/^%s$'):\n%slayers of the run:\n%s",
		seed, mode, f.name, seed, cfg.ops, f.name, seed, mode, b.String(), describeLayers(layers, nil))
	if cfg.minimize {
		for _, d := range divs {
			reportMinimized(t, seed, mode, f, layers, ops, d)
		}
	} else {
		t.Logf("set UNION9P_DIFF_MINIMIZE=1 to shrink the sequence")
	}
}

// diffConfig is what TestDifferential runs.
type diffConfig struct {
	seeds     []int64
	ops       int  // per seed
	treeEvery int  // compare merged trees after this many operations
	minimize  bool // shrink a failing sequence
}

// diffConfigFromEnv reads the UNION9P_DIFF_* variables (see doc.go). The
// default is a fixed, fast set of seeds.
func diffConfigFromEnv(t *testing.T) diffConfig {
	t.Helper()
	cfg := diffConfig{ops: 200, treeEvery: 10, minimize: os.Getenv("UNION9P_DIFF_MINIMIZE") == "1"}
	for s := int64(1); s <= 24; s++ {
		cfg.seeds = append(cfg.seeds, s)
	}
	envInt := func(name string) (int64, bool) {
		v := os.Getenv(name)
		if v == "" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			t.Fatalf("%s=%q: want a non-negative integer", name, v)
		}
		return n, true
	}
	if n, ok := envInt("UNION9P_DIFF_SEEDS"); ok {
		cfg.seeds = nil
		for s := int64(1); s <= n; s++ {
			cfg.seeds = append(cfg.seeds, s)
		}
	}
	if s, ok := envInt("UNION9P_DIFF_SEED"); ok {
		cfg.seeds = []int64{s}
	}
	if n, ok := envInt("UNION9P_DIFF_OPS"); ok {
		cfg.ops = int(n)
	}
	return cfg
}

// divergence is a point where union and the kernel disagreed.
type divergence struct {
	Index  int    // of the operation after which it showed
	Op     op     // that operation
	What   string // what disagreed: an operation's outcome, or the trees
	Kernel string
	Union  string
	// Fatal: the two sides may no longer hold the same tree (one
	// succeeded where the other failed, or the trees differ), so the run
	// stopped. A disagreement on the errno only, with both sides failing,
	// is not fatal: the run goes on and reports it with the others.
	Fatal bool
}

func (d *divergence) String() string {
	return fmt.Sprintf("after op #%d %s: %s\n  kernel overlay: %s\n  union:          %s", d.Index, d.Op, d.What, d.Kernel, d.Union)
}

// signature identifies the disagreement, for shrinking a sequence.
func (d *divergence) signature() string {
	return d.What + "\x00" + d.Kernel + "\x00" + d.Union
}

// runDiff runs ops on both file systems of env and returns where they
// disagreed: every errno-only disagreement (one per signature) and, last,
// the first fatal one, after which it stops. The merged trees are compared
// every treeEvery operations (never when 0) and after the last one.
func runDiff(env *diffEnv, ops []op, treeEvery int) []*divergence {
	var divs []*divergence
	seen := map[string]bool{}
	// outcome compares one outcome; it reports whether the run may go on.
	outcome := func(i int, o op, what, k, u string) bool {
		if k == u {
			return true
		}
		d := &divergence{Index: i, Op: o, What: what, Kernel: k, Union: u}
		d.Fatal = strings.HasPrefix(k, "ok") || strings.HasPrefix(u, "ok")
		if !seen[d.signature()] || d.Fatal {
			seen[d.signature()] = true
			divs = append(divs, d)
		}
		return !d.Fatal
	}
	for i, o := range ops {
		if o.needsObject() {
			// A client learns the type before it acts; see appliesTo.
			stat := op{Kind: opStat, Path: o.Path}
			if !outcome(i, o, "outcome of "+stat.String(), stat.apply(env.kernel), stat.apply(env.union)) {
				return divs
			}
			if fi, err := env.kernel.Lstat(o.Path); err == nil && !o.appliesTo(fi.typ()) {
				continue
			}
		}
		k, u := o.apply(env.kernel), o.apply(env.union)
		switch o.Kind {
		case opUnlink, opRmdir, opRename:
			env.forget(o.Path)
			env.forget(o.Path2)
		}
		if !outcome(i, o, "outcome of "+o.String(), k, u) {
			return divs
		}
		last := i == len(ops)-1
		if last || (treeEvery > 0 && (i+1)%treeEvery == 0) {
			if d := compareTrees(env); d != nil {
				d.Index, d.Op = i, o
				return append(divs, d)
			}
		}
	}
	if len(ops) == 0 {
		if d := compareTrees(env); d != nil {
			divs = append(divs, d)
		}
	}
	return divs
}

func compareTrees(env *diffEnv) *divergence {
	diffs := diffTrees(captureTree(env.kernel), captureTree(env.union), 1)
	if len(diffs) == 0 {
		return nil
	}
	return &divergence{What: "merged tree at /" + diffs[0].Path, Kernel: diffs[0].Kernel, Union: diffs[0].Union, Fatal: true}
}

// describeOps renders ops[from:to+1] with their indexes.
func describeOps(ops []op, from, to int) string {
	var b strings.Builder
	for i := max(from, 0); i <= to && i < len(ops); i++ {
		fmt.Fprintf(&b, "  #%d %s\n", i, ops[i])
	}
	return b.String()
}

// describeLayers renders the entries of both layers, all of them or only
// those on, above or below the given paths.
func describeLayers(layers [2]layerSpec, paths []string) string {
	var b strings.Builder
	for i, l := range layers {
		for _, e := range l.Entries {
			if paths == nil || relevant(e, paths) {
				fmt.Fprintf(&b, "  lower%d: %s\n", i+1, e)
			}
		}
	}
	return b.String()
}

func relevant(e layerEntry, paths []string) bool {
	for _, p := range paths {
		if p == e.Path || strings.HasPrefix(p, e.Path+"/") || strings.HasPrefix(e.Path, p+"/") || (e.Kind == kindHardlink && e.Target == p) {
			return true
		}
	}
	return false
}
