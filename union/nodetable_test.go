package union

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOneNodePerObject: every lookup of one object returns its one Node,
// whatever path led there, so a change through any holder is the change
// of all of them.
func TestOneNodePerObject(t *testing.T) {
	tu := newUnion(t, []string{"u=upper"}, []string{"d/f=lower", "d/sub/g=x"})
	withRedirects(t, tu)
	a := tu.mustWalk(t, "/d/f")
	b := tu.mustWalk(t, "/d/f")
	if a != b {
		t.Fatal("two lookups of /d/f gave two Nodes")
	}
	r1, r2 := tu.mustWalk(t, "/"), tu.mustWalk(t, "/")
	if r1 != r2 {
		t.Fatal("two Roots gave two Nodes")
	}
	// A copy-up through one holder: the other has the upper object at once
	// (its host descriptor is the same one).
	must(t, a.SetAttr(SetAttr{SetMode: true, Mode: 0o640}))
	if b.upperFd() < 0 {
		t.Fatal("the copy-up made through one holder is not the other's")
	}
	// A rename of the parent moves the one Node of the directory: the
	// file's Node, held under it, has the new path.
	d := tu.mustWalk(t, "/d")
	sub := tu.mustWalk(t, "/d/sub")
	root := tu.mustWalk(t, "/")
	must(t, root.Rename("d", root, "e"))
	if p := b.Path(); p != "/e/f" {
		t.Errorf("after renaming d to e, the file's Node says %s", p)
	}
	if p := sub.Path(); p != "/e/sub" {
		t.Errorf("after renaming d to e, the subdirectory's Node says %s", p)
	}
	if e := tu.mustWalk(t, "/e"); e != d {
		t.Error("a lookup of the renamed directory made a new Node")
	}
	// The moved directory can still be copied into through the held Node.
	g := tu.mustWalk(t, "/e/sub/g")
	must(t, g.SetXattr("user.k", []byte("v"), 0))
	if v, err := getXattrPath(filepath.Join(tu.upper, "e/sub/g"), "user.k", unix.Lgetxattr); err != nil || string(v) != "v" {
		t.Errorf("copy-up under the renamed directory did not land in upper e/sub/g: %q %v", v, err)
	}
}

// TestRemovedNameGetsNewNode: a holder of a removed name keeps its object
// (like an open file), and the name made again is another object with its
// own Node.
func TestRemovedNameGetsNewNode(t *testing.T) {
	tu := newUnion(t, nil, []string{"f=old"})
	old := tu.mustWalk(t, "/f")
	root := tu.mustWalk(t, "/")
	must(t, root.Unlink("f", false))
	c, f, err := root.Create("f", unix.O_RDWR, 0o644, Owner{})
	must(t, err)
	_, err = f.WriteAt([]byte("new"), 0)
	must(t, err)
	f.Close()
	c.Release()
	now := tu.mustWalk(t, "/f")
	if now == old {
		t.Fatal("the name made again has the removed object's Node")
	}
	if got, _ := readAllNode(old); got != "old" {
		t.Errorf("the removed object's holder reads %q", got)
	}
	if got, _ := readAllNode(now); got != "new" {
		t.Errorf("the new object reads %q", got)
	}
	// Renamed over: the replaced name's Node leaves the table too.
	_, f, err = root.Create("g", unix.O_RDWR, 0o644, Owner{})
	must(t, err)
	f.Close()
	g := tu.mustWalk(t, "/g")
	must(t, root.Rename("f", root, "g"))
	if n := tu.mustWalk(t, "/g"); n == g || n != now {
		t.Error("after renaming f over g, a lookup of g does not give f's Node")
	}
}

// TestLowerHardLinksAreNamesOfTheirOwn: two names of one lower inode share
// a stable id but are copied up each on its own (as overlayfs without its
// index), so each name has its Node and a change through one does not
// land on the other's name.
func TestLowerHardLinksAreNamesOfTheirOwn(t *testing.T) {
	tu := newUnion(t, nil, []string{"a=data"})
	must(t, os.Link(filepath.Join(tu.lowers[0], "a"), filepath.Join(tu.lowers[0], "b")))
	tu.setupDone(t)
	a, b := tu.mustWalk(t, "/a"), tu.mustWalk(t, "/b")
	if a == b {
		t.Fatal("two names of a lower hard link share one Node")
	}
	must(t, b.SetXattr("user.k", []byte("v"), 0))
	if _, err := os.Lstat(filepath.Join(tu.upper, "b")); err != nil {
		t.Errorf("copy-up through b: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(tu.upper, "a")); !os.IsNotExist(err) {
		t.Errorf("copy-up through b made upper a: %v", err)
	}
}

// TestNodesAreBoundedByHolders: the table keeps what callers hold, not the
// names ever looked up.
func TestNodesAreBoundedByHolders(t *testing.T) {
	var files []string
	for i := range 200 {
		files = append(files, fmt.Sprintf("d/f%d=x", i))
	}
	tu := newUnion(t, nil, files)
	for i := range 200 {
		n, err := tu.walk(t, fmt.Sprintf("/d/f%d", i))
		must(t, err)
		n.Release()
	}
	if got := tu.Live(); got != 0 {
		t.Errorf("%d Nodes live after every lookup was released", got)
	}
	held := tu.mustWalk(t, "/d/f7")
	_ = held
	if got := tu.Live(); got != 3 { // root, d, f7
		t.Errorf("%d Nodes live while one file is held; want 3 (it and its ancestors)", got)
	}
}
