package difftest

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Tests of the test harness itself: if these fail, the differential tests
// above prove less than they claim.

func TestGenerationIsDeterministic(t *testing.T) {
	for seed := int64(1); seed <= 5; seed++ {
		l1, l2 := generateLayers(seed), generateLayers(seed)
		if !reflect.DeepEqual(l1, l2) {
			t.Errorf("seed %d: generateLayers differs between two calls", seed)
		}
		if !reflect.DeepEqual(generateOps(seed, l1, 300), generateOps(seed, l2, 300)) {
			t.Errorf("seed %d: generateOps differs between two calls", seed)
		}
	}
}

// TestGeneratorCoversTheCases checks that the default seeds produce every
// kind of layer entry and overlap the test is meant to exercise, and every
// kind of operation, so that a change to the generator cannot quietly
// make the differential test trivial.
func TestGeneratorCoversTheCases(t *testing.T) {
	features := map[string]bool{}
	opsSeen := map[opKind]bool{}
	for seed := int64(1); seed <= 24; seed++ {
		layers := generateLayers(seed)
		top, bottom := layers[0].byPath(), layers[1].byPath()
		for _, l := range layers {
			for _, e := range l.Entries {
				features["kind "+e.Kind.String()] = true
				if e.Opaque {
					features["opaque dir"] = true
				}
				if e.Hole > 0 {
					features["sparse file"] = true
				}
				if e.Mode&0o6000 != 0 {
					features["setuid/setgid"] = true
				}
				if e.UID != 0 {
					features["non-root owner"] = true
				}
				for name := range e.Xattrs {
					features["xattr "+strings.SplitN(name, ".", 2)[0]] = true
				}
			}
		}
		for p, te := range top {
			be, ok := bottom[p]
			switch {
			case !ok:
			case te.Kind == kindDir && be.Kind == kindDir && !te.Opaque:
				features["merged dir"] = true
			case te.Kind == kindWhiteout:
				features["whiteout hiding a lower "+be.Kind.String()] = true
			case te.Kind == kindDir && be.Kind != kindDir:
				features["dir over non-dir"] = true
			case te.Kind != kindDir && be.Kind == kindDir:
				features["non-dir over dir"] = true
			case te.Kind == kindFile && be.Kind == kindFile:
				features["file over file"] = true
			}
		}
		for _, o := range generateOps(seed, layers, 200) {
			opsSeen[o.Kind] = true
		}
	}
	for _, want := range []string{
		"kind file", "kind dir", "kind symlink", "kind hardlink", "kind whiteout", "kind fifo",
		"opaque dir", "sparse file", "setuid/setgid", "non-root owner", "xattr user", "xattr trusted",
		"merged dir", "whiteout hiding a lower file", "whiteout hiding a lower dir",
		"dir over non-dir", "non-dir over dir", "file over file",
	} {
		if !features[want] {
			t.Errorf("no generated layer has: %s", want)
		}
	}
	for k := opKind(0); k < numOpKinds; k++ {
		if !opsSeen[k] {
			t.Errorf("no generated sequence has a %s", k)
		}
	}
}

func TestShrinkKeepsOnlyWhatFails(t *testing.T) {
	var ops []op
	for i := range 40 {
		ops = append(ops, op{Kind: opStat, Path: string(rune('a' + i%26)), Off: int64(i)})
	}
	// Fails when op 7 and op 31 are both present, in that order.
	fails := func(c []op) bool {
		i7 := -1
		for i, o := range c {
			if o.Off == 7 {
				i7 = i
			}
			if o.Off == 31 && i7 >= 0 {
				return true
			}
		}
		return false
	}
	got := shrink(ops, fails)
	if len(got) != 2 || got[0].Off != 7 || got[1].Off != 31 {
		t.Errorf("shrink = %v, want ops 7 and 31", got)
	}
}

// TestDifferentialSeesATamperedUpper plants an object in union's upper
// behind its back: the comparison must report it.
func TestDifferentialSeesATamperedUpper(t *testing.T) {
	requireOverlay(t)
	env := newDiffEnv(t, generateLayers(1), freshWalks, plainFeatures)
	if err := os.WriteFile(filepath.Join(env.unionUpper, "planted"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	divs := runDiff(env, nil, 0)
	if len(divs) != 1 || divs[0].What != "merged tree at /" || !divs[0].Fatal {
		t.Errorf("runDiff with a planted file = %v, want a fatal difference of the root listing", divs)
	}
}
