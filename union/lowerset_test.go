package union

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// sharedUnions opens n unions, each with its own upper, over one LowerSet
// of the given lower layouts (topmost first).
func sharedUnions(t *testing.T, n int, lowers ...[]string) (*LowerSet, []*testUnion) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for device whiteouts")
	}
	base := t.TempDir()
	var paths []string
	for i, l := range lowers {
		d := filepath.Join(base, "lower"+string(rune('0'+i)))
		must(t, os.Mkdir(d, 0o755))
		layout(t, d, l...)
		paths = append(paths, d)
	}
	before := snapshot(t, paths)
	set, err := OpenLowers(paths, base)
	must(t, err)
	var tus []*testUnion
	for i := 0; i < n; i++ {
		tu := &testUnion{upper: filepath.Join(base, "upper"+string(rune('0'+i))), work: filepath.Join(base, "work"+string(rune('0'+i))), lowers: paths}
		must(t, os.Mkdir(tu.upper, 0o755))
		must(t, os.Mkdir(tu.work, 0o755))
		u, err := Open(Options{LowerSet: set, Upper: tu.upper, Workdir: tu.work})
		must(t, err)
		tu.Union = u
		tus = append(tus, tu)
	}
	t.Cleanup(func() {
		for _, tu := range tus {
			tu.Close()
		}
		set.Close()
		if after := snapshot(t, paths); after != before {
			t.Errorf("a lower layer changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	return set, tus
}

func TestLowerSetSharedListingsStayPrivateToEachUpper(t *testing.T) {
	_, us := sharedUnions(t, 2, []string{"d/a=1", "d/b=2", "e/x=3", "d/s/k=6"}, []string{"d/c=4", "e/y=5", "d/s/l=7"})
	a, b := us[0], us[1]
	// Both list d/s before any change: one listing serves both.
	for _, tu := range us {
		if got := tu.list(t, "d/s"); !slices.Equal(got, []string{"k", "l"}) {
			t.Fatalf("listing d/s: %v", got)
		}
	}
	la, err := a.mustWalk(t, "d/s").listMergedCached()
	must(t, err)
	lb, err := b.mustWalk(t, "d/s").listMergedCached()
	must(t, err)
	if &la[0] != &lb[0] {
		t.Fatal("two unions over one LowerSet hold two copies of one lower directory's listing")
	}
	// A top-level directory's ".." is each union's own root.
	for _, tu := range us {
		ents, err := tu.mustWalk(t, "d").listMergedCached()
		must(t, err)
		if root := tu.mustWalk(t, ""); ents[1].Name != ".." || ents[1].ID != root.id {
			t.Fatalf("d's ..: %+v, root id %#x", ents[1], root.id)
		}
	}
	// a changes d: its listing shows it, b's does not, and the shared
	// listing is not changed.
	d := a.mustWalk(t, "d")
	c, f, err := d.Create("new", unix.O_RDWR, 0o644, Owner{})
	must(t, err)
	f.Close()
	c.Release()
	must(t, d.Unlink("a", false))
	if got := a.list(t, "d"); !slices.Equal(got, []string{"b", "c", "new", "s"}) {
		t.Fatalf("a lists d after its changes: %v", got)
	}
	if got := b.list(t, "d"); !slices.Equal(got, []string{"a", "b", "c", "s"}) {
		t.Fatalf("b lists d after a's changes: %v", got)
	}
	// A directory b changes while a has it listed (cached) stays as it
	// was for a.
	if got := a.list(t, "e"); !slices.Equal(got, []string{"x", "y"}) {
		t.Fatalf("a lists e: %v", got)
	}
	e := b.mustWalk(t, "e")
	_, err = e.Mkdir("z", 0o755, Owner{})
	must(t, err)
	if got := a.list(t, "e"); !slices.Equal(got, []string{"x", "y"}) {
		t.Fatalf("a lists e after b's mkdir: %v", got)
	}
	if got := b.list(t, "e"); !slices.Equal(got, []string{"x", "y", "z"}) {
		t.Fatalf("b lists e after its mkdir: %v", got)
	}
}

func TestLowerSetIDsAsAUnionOfItsOwn(t *testing.T) {
	lower := []string{"d/f=1", "g=2"}
	set, us := sharedUnions(t, 2, lower)
	// A union of its own over the same lower, its upper on the same
	// filesystem as the set's sameFS.
	base := filepath.Dir(set.Paths()[0])
	must(t, os.Mkdir(filepath.Join(base, "upperown"), 0o755))
	must(t, os.Mkdir(filepath.Join(base, "workown"), 0o755))
	own, err := Open(Options{Lowers: set.Paths(), Upper: filepath.Join(base, "upperown"), Workdir: filepath.Join(base, "workown")})
	must(t, err)
	defer own.Close()
	tuOwn := &testUnion{Union: own}
	for _, p := range []string{"d", "d/f", "g"} {
		want, err := tuOwn.mustWalk(t, p).Attr()
		must(t, err)
		for i, tu := range us {
			got, err := tu.mustWalk(t, p).Attr()
			must(t, err)
			if got.ID != want.ID {
				t.Fatalf("%s: id %#x in shared union %d, %#x in a union of its own", p, got.ID, i, want.ID)
			}
		}
	}
	// A copy-up records the id as its origin: the same in both.
	f := us[0].mustWalk(t, "g")
	must(t, f.SetAttr(SetAttr{SetMode: true, Mode: 0o600}))
	if got, err := f.Attr(); err != nil || got.ID != us[1].mustWalk(t, "g").id {
		t.Fatalf("id after copy-up: %+v %v", got, err)
	}
}

func TestLowerSetConcurrentUnions(t *testing.T) {
	var lower []string
	for i := 0; i < 50; i++ {
		lower = append(lower, "d/f"+string(rune('a'+i%26))+string(rune('a'+i/26))+"=x")
	}
	_, us := sharedUnions(t, 4, lower)
	var wg sync.WaitGroup
	for i, tu := range us {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 50; k++ {
				n, err := tu.walk(t, "d")
				if err != nil {
					t.Error(err)
					return
				}
				if k == 10*i {
					if c, err := n.Mkdir("own", 0o755, Owner{}); err == nil {
						c.Release()
					}
				}
				ents, err := n.listMergedCached()
				n.Release()
				if err != nil {
					t.Error(err)
					return
				}
				hasOwn := slices.ContainsFunc(ents, func(e Dirent) bool { return e.Name == "own" })
				if want := k >= 10*i; hasOwn != want || len(ents) != 52+btoi(hasOwn) {
					t.Errorf("union %d, round %d: %d entries, own %v", i, k, len(ents), hasOwn)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
