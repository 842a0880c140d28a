package difftest

import (
	"fmt"
	"strings"
	"testing"
)

// reportMinimized shrinks a sequence that diverged as want (among other
// divergences, maybe) to a short one that still does, replaying each
// candidate on fresh copies of the same layers, and logs it with the layer
// entries it touches.
func reportMinimized(t *testing.T, seed int64, mode walkMode, f features, layers [2]layerSpec, ops []op, want *divergence) {
	t.Helper()
	runs := 0
	fails := func(candidate []op) bool {
		runs++
		found := false
		// Each replay gets its own environment, torn down before the next.
		t.Run(fmt.Sprintf("replay-%d", runs), func(t *testing.T) {
			env := newDiffEnv(t, layers, mode, f)
			for _, d := range runDiff(env, candidate, 0) {
				found = found || d.signature() == want.signature()
			}
		})
		return found
	}
	ops = ops[:want.Index+1]
	if !fails(ops) {
		t.Logf("seed %d: the divergence does not replay on its own (it depends on the periodic tree checks or is flaky); not minimized", seed)
		return
	}
	shortest := shrink(ops, fails)
	var extra []string
	if p, ok := strings.CutPrefix(want.What, "merged tree at /"); ok {
		extra = append(extra, p)
	}
	then := fmt.Sprintf("%s\n    kernel overlay: %s\n    union:          %s", want.What, want.Kernel, want.Union)
	logShrunk(t, seed, runs, shortest, then, extra, layers)
}

// logShrunk logs a shrunk sequence, what it ends in, and the layer entries
// on, above or below its paths and the extra ones.
func logShrunk(t *testing.T, seed int64, runs int, ops []op, then string, extra []string, layers [2]layerSpec) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d shrunk in %d replays to %d operations:\n", seed, runs, len(ops))
	paths := extra
	for _, o := range ops {
		fmt.Fprintf(&b, "  %s\n", o)
		paths = append(paths, o.Path)
		if o.Path2 != "" {
			paths = append(paths, o.Path2)
		}
	}
	fmt.Fprintf(&b, "  then: %s\nlayer entries on those paths:\n%s", then, describeLayers(layers, paths))
	t.Log(b.String())
}

// shrink returns a subsequence of ops for which fails still holds, by
// delta debugging (ddmin) followed by removing single operations until no
// one can go. fails(ops) must hold.
func shrink(ops []op, fails func([]op) bool) []op {
	n := 2
	for len(ops) >= 2 {
		chunk := (len(ops) + n - 1) / n
		reduced := false
		for start := 0; start < len(ops); start += chunk {
			end := min(start+chunk, len(ops))
			candidate := append(append([]op(nil), ops[:start]...), ops[end:]...)
			if fails(candidate) {
				ops, n, reduced = candidate, max(n-1, 2), true
				break
			}
		}
		if !reduced {
			if n >= len(ops) {
				break
			}
			n = min(2*n, len(ops))
		}
	}
	for i := 0; i < len(ops); {
		candidate := append(append([]op(nil), ops[:i]...), ops[i+1:]...)
		if fails(candidate) {
			ops = candidate
		} else {
			i++
		}
	}
	return ops
}
