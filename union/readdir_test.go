package union

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadDirChunksRewindAndTypes(t *testing.T) {
	tu := newUnion(t, []string{"u1=1", "shared=up", "gone!"},
		[]string{"shared=low", "gone=1", "sub/", "l->x", "l1=1"},
		[]string{"l2=1", "l1=again"})
	root := tu.mustWalk(t, "/")
	f, err := root.Open(unix.O_RDONLY)
	must(t, err)
	defer f.Close()
	read := func(chunk int) map[string]uint8 {
		got := map[string]uint8{}
		cookie := uint64(0)
		for {
			ents, err := f.ReadDir(cookie, chunk)
			must(t, err)
			if len(ents) == 0 {
				return got
			}
			for _, e := range ents {
				if _, dup := got[e.Name]; dup {
					t.Fatalf("%s listed twice", e.Name)
				}
				got[e.Name] = e.Type
				cookie = e.Cookie
			}
		}
	}
	want := map[string]uint8{".": unix.DT_DIR, "..": unix.DT_DIR, "u1": unix.DT_REG, "shared": unix.DT_REG,
		"sub": unix.DT_DIR, "l": unix.DT_LNK, "l1": unix.DT_REG, "l2": unix.DT_REG}
	for _, chunk := range []int{1, 2, 1000} {
		got := read(chunk)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("chunk %d: got %v want %v", chunk, got, want)
		}
	}
	// A name added meanwhile shows up after a rewind.
	must(t, os.WriteFile(filepath.Join(tu.upper, "late"), nil, 0o644))
	if _, ok := read(3)["late"]; !ok {
		t.Fatal("rewind did not take a fresh listing")
	}
}

func TestReadDirHundredThousandMerged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 100k files")
	}
	tu := newUnion(t, nil, nil, nil)
	for i := 0; i < 100000; i++ {
		dir := tu.lowers[i%2]
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%06d", i)), nil, 0o644))
	}
	tu.setupDone(t)
	if got := len(tu.list(t, "/")); got != 100000 {
		t.Fatalf("listed %d entries", got)
	}
}

func BenchmarkReadDirMerged10k(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	base := b.TempDir()
	l1, l2, up, work := filepath.Join(base, "l1"), filepath.Join(base, "l2"), filepath.Join(base, "up"), filepath.Join(base, "work")
	for _, d := range []string{l1, l2, up, work} {
		os.Mkdir(d, 0o755)
	}
	for i := 0; i < 10000; i++ {
		os.WriteFile(filepath.Join([]string{l1, l2}[i%2], fmt.Sprintf("f%05d", i)), nil, 0o644)
	}
	u, err := Open(Options{Lowers: []string{l1, l2}, Upper: up, Workdir: work})
	if err != nil {
		b.Fatal(err)
	}
	defer u.Close()
	root, _ := u.Root()
	defer root.Release()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, _ := root.Open(unix.O_RDONLY)
		cookie := uint64(0)
		for {
			ents, _ := f.ReadDir(cookie, 128)
			if len(ents) == 0 {
				break
			}
			cookie = ents[len(ents)-1].Cookie
		}
		f.Close()
	}
}

// Listings are cached; every change made through the union must show in
// the next listing at once, however fast it follows the last one.
func TestReadDirSeesEveryChangeAtOnce(t *testing.T) {
	tu := newUnion(t, nil, []string{"a=1"})
	root := tu.mustWalk(t, "/")
	for i := 0; i < 50; i++ {
		name := fmt.Sprintf("n%d", i)
		_, f, err := root.Create(name, unix.O_RDWR, 0o644, Owner{})
		must(t, err)
		f.Close()
		if got := tu.list(t, "/"); len(got) != i+2 {
			t.Fatalf("after creating %s the root lists %v", name, got)
		}
	}
	must(t, root.Unlink("a", false))
	for _, n := range tu.list(t, "/") {
		if n == "a" {
			t.Fatal("unlinked name still listed")
		}
	}
}

// A listing reports the ids stat does: a copied-up entry its origin's, an
// entry made anew over a deleted lower one its own.
func TestReadDirIDsMatchLookup(t *testing.T) {
	tu := newUnion(t, nil, []string{"copied=1", "remade=1", "plain=1"})
	root := tu.mustWalk(t, "/")
	must(t, tu.mustWalk(t, "copied").SetAttr(SetAttr{SetMode: true, Mode: 0o600}))
	must(t, root.Unlink("remade", false))
	n, f, err := root.Create("remade", unix.O_RDWR, 0o644, Owner{})
	must(t, err)
	f.Close()
	n.Release()
	dir, err := root.Open(unix.O_RDONLY)
	must(t, err)
	defer dir.Close()
	ents, err := dir.ReadDir(0, 100)
	must(t, err)
	for _, e := range ents {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		a, err := tu.mustWalk(t, e.Name).Attr()
		must(t, err)
		if a.ID != e.ID {
			t.Errorf("%s: readdir id %x, stat id %x", e.Name, e.ID, a.ID)
		}
	}
}
