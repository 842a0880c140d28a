package tenant

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func openDir(t *testing.T, path string) int {
	t.Helper()
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	must(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// Symbolic links inside the tree, to the outside by absolute and relative
// paths, and a hard link of an outside file are removed as names; what
// they point to stays.
func TestRemoveAllAtKeepsWhatLinksPointTo(t *testing.T) {
	out, check := sentinel(t)
	base := t.TempDir()
	tree := filepath.Join(base, "tree")
	must(t, os.MkdirAll(filepath.Join(tree, "a", "b"), 0o755))
	must(t, os.Symlink(out, filepath.Join(tree, "abs")))
	must(t, os.Symlink(filepath.Join(out, "keep"), filepath.Join(tree, "a", "file-link")))
	rel, err := filepath.Rel(filepath.Join(tree, "a", "b"), out)
	must(t, err)
	must(t, os.Symlink(rel, filepath.Join(tree, "a", "b", "rel")))
	must(t, os.Symlink(filepath.Join(out, "sub"), filepath.Join(tree, "a", "b", "sub"))) // a "directory"
	must(t, os.Link(filepath.Join(out, "keep"), filepath.Join(tree, "a", "hard")))
	must(t, os.WriteFile(filepath.Join(tree, "a", "b", "own"), []byte("x"), 0o644))

	must(t, removeAllAt(openDir(t, base), "tree"))
	if _, err := os.Lstat(tree); !os.IsNotExist(err) {
		t.Fatalf("tree still there: %v", err)
	}
	check()

	// A root that is itself a link to the outside: the link goes.
	must(t, os.Symlink(out, filepath.Join(base, "link")))
	must(t, removeAllAt(openDir(t, base), "link"))
	if _, err := os.Lstat(filepath.Join(base, "link")); !os.IsNotExist(err) {
		t.Fatalf("link still there: %v", err)
	}
	check()
}

func TestRemoveAllAtStopsAtMountPoints(t *testing.T) {
	base := t.TempDir()
	mnt := filepath.Join(base, "tree", "mnt")
	must(t, os.MkdirAll(mnt, 0o755))
	mountTmpfs(t, mnt)
	must(t, os.WriteFile(filepath.Join(mnt, "inside"), []byte("mounted"), 0o644))
	err := removeAllAt(openDir(t, base), "tree")
	if !errors.Is(err, errMountPoint) {
		t.Fatalf("removing a tree with a mount point: %v, want errMountPoint", err)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "inside")); err != nil || string(got) != "mounted" {
		t.Fatalf("the mounted filesystem was touched: %q %v", got, err)
	}
}

func TestRemoveAllAtDeep(t *testing.T) {
	base := tmpfsDir(t)
	must(t, os.Mkdir(filepath.Join(base, "tree"), 0o755))
	fd, err := unix.Open(filepath.Join(base, "tree"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	for range 2100 { // 4.2 kB of path, past PATH_MAX
		must(t, unix.Mkdirat(fd, "d", 0o755))
		must(t, unix.Symlinkat("/", fd, "root-link"))
		nfd, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		must(t, err)
		unix.Close(fd)
		fd = nfd
	}
	unix.Close(fd)
	bfd := openDir(t, base)
	withFewFds(t, func() { must(t, removeAllAt(bfd, "tree")) })
	if _, err := os.Lstat(filepath.Join(base, "tree")); !os.IsNotExist(err) {
		t.Fatalf("tree still there: %v", err)
	}
}

// While the removal runs, another goroutine keeps replacing directories
// inside the tree with symbolic links to the outside (and putting them
// back). Whatever interleaving happens, the outside stays whole.
func TestRemoveAllAtRacingSwaps(t *testing.T) {
	out, check := sentinel(t)
	for round := range 3 {
		base := t.TempDir()
		tree := filepath.Join(base, "tree")
		var victims []string
		for i := range 8 {
			d := filepath.Join(tree, fmt.Sprintf("d%d", i), "sub")
			must(t, os.MkdirAll(d, 0o755))
			for j := range 50 {
				must(t, os.WriteFile(filepath.Join(d, fmt.Sprint("f", j)), []byte("x"), 0o644))
			}
			victims = append(victims, d)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v := victims[i%len(victims)]
				// Swap the directory for a link to the outside and back.
				if os.Rename(v, v+".real") == nil {
					os.Symlink(out, v)
					os.Remove(v)
					os.Rename(v+".real", v)
				}
				os.Symlink(filepath.Join(out, "sub"), filepath.Join(filepath.Dir(v), "late-link"))
			}
		}()
		err := removeAllAt(openDir(t, base), "tree")
		close(stop)
		wg.Wait()
		// The racer may have re-created entries after the removal;
		// what matters is that nothing outside was reached.
		check()
		if t.Failed() {
			t.Fatalf("round %d: removal reached the outside (err %v)", round, err)
		}
		if err != nil && !errors.Is(err, errChanged) {
			t.Logf("round %d: %v", round, err)
		}
	}
}

// The swap happens exactly in the window between a directory's lstat and
// the descent into it: the walk must notice and remove the link.
func TestEmptyDirSwapInTheWindow(t *testing.T) {
	out, check := sentinel(t)
	base := t.TempDir()
	tree := filepath.Join(base, "tree")
	must(t, os.MkdirAll(filepath.Join(tree, "a", "victim"), 0o755))
	must(t, os.WriteFile(filepath.Join(tree, "a", "victim", "f"), nil, 0o644))
	v := removeVisitor()
	swapped := false
	v.beforeOpen = func(dirfd int, name string) {
		if name == "victim" && !swapped {
			swapped = true
			must(t, unix.Renameat(dirfd, "victim", dirfd, "victim.moved"))
			must(t, unix.Symlinkat(out, dirfd, "victim"))
		}
	}
	if err := walk(openDir(t, tree), v); err != nil {
		t.Fatal(err)
	}
	if !swapped {
		t.Fatal("the walk never reached the victim")
	}
	check()
	names, _ := os.ReadDir(tree)
	if len(names) != 0 {
		t.Fatalf("tree not emptied: %v", names)
	}
}

// A directory the walk is inside is moved out of the tree: going back up
// through ".." would land outside, and the walk stops there instead.
func TestEmptyDirMovedAwayStops(t *testing.T) {
	out, check := sentinel(t)
	base := t.TempDir()
	tree := filepath.Join(base, "tree")
	must(t, os.MkdirAll(filepath.Join(tree, "a", "victim", "x"), 0o755))
	// Names the outside directory has too: a walk that went on in the
	// wrong directory would remove the outside's "keep" and "sub".
	must(t, os.WriteFile(filepath.Join(tree, "a", "keep"), nil, 0o644))
	must(t, os.Mkdir(filepath.Join(tree, "a", "sub"), 0o755))
	v := removeVisitor()
	moved := false
	v.beforeOpen = func(dirfd int, name string) {
		if name == "x" && !moved {
			moved = true
			must(t, os.Rename(filepath.Join(tree, "a", "victim"), filepath.Join(out, "victim")))
		}
	}
	err := walk(openDir(t, tree), v)
	if !moved {
		t.Fatal("the walk never reached victim/x")
	}
	// It may have finished "a" before reaching the victim; if it went
	// back up through the moved directory it must have stopped.
	if err != nil && !errors.Is(err, errChanged) {
		t.Fatalf("walk: %v, want nil or errChanged", err)
	}
	check()
}
