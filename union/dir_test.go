package union

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

func isDeviceWhiteout(t *testing.T, path string) bool {
	t.Helper()
	var st unix.Stat_t
	if unix.Lstat(path, &st) != nil {
		return false
	}
	return whiteout.IsDeviceWhiteout(&st)
}

func TestUnlinkLowerLeavesWhiteout(t *testing.T) {
	tu := newUnion(t, nil, []string{"d/f=1", "d/g=2"})
	d := tu.mustWalk(t, "d")
	must(t, d.Unlink("f", false))
	if !isDeviceWhiteout(t, filepath.Join(tu.upper, "d/f")) {
		t.Fatal("no whiteout in the upper")
	}
	if got := tu.list(t, "d"); !slices.Equal(got, []string{"g"}) {
		t.Fatalf("lists %v", got)
	}
	_, err := tu.walk(t, "d/f")
	wantErrno(t, err, unix.ENOENT)
	wantErrno(t, d.Unlink("f", false), unix.ENOENT)
}

func TestUnlinkUpperOnlyLeavesNothing(t *testing.T) {
	tu := newUnion(t, []string{"new=1"}, []string{"other=1"})
	root := tu.mustWalk(t, "/")
	must(t, root.Unlink("new", false))
	if _, err := os.Lstat(filepath.Join(tu.upper, "new")); !os.IsNotExist(err) {
		t.Fatalf("upper still has an entry: %v", err)
	}
}

func TestUnlinkCopiedUpLeavesWhiteout(t *testing.T) {
	tu := newUnion(t, nil, []string{"f=1"})
	n := tu.mustWalk(t, "f")
	must(t, n.SetAttr(SetAttr{SetMode: true, Mode: 0o600}))
	root := tu.mustWalk(t, "/")
	must(t, root.Unlink("f", false))
	if !isDeviceWhiteout(t, filepath.Join(tu.upper, "f")) {
		t.Fatal("copied-up file removed without a whiteout: the lower one reappears")
	}
}

func TestUnlinkTypeErrors(t *testing.T) {
	tu := newUnion(t, nil, []string{"d/x=1", "f=1", "e/"})
	root := tu.mustWalk(t, "/")
	wantErrno(t, root.Unlink("d", false), unix.EISDIR)
	wantErrno(t, root.Unlink("f", true), unix.ENOTDIR)
	wantErrno(t, root.Unlink("d", true), unix.ENOTEMPTY)
	must(t, root.Unlink("e", true))
	if !isDeviceWhiteout(t, filepath.Join(tu.upper, "e")) {
		t.Fatal("rmdir of a lower dir left no whiteout")
	}
}

func TestRmdirMergedNeedsEmptyAsMerged(t *testing.T) {
	tu := newUnion(t, []string{"d/up=1"}, []string{"d/low=1"})
	root := tu.mustWalk(t, "/")
	d := tu.mustWalk(t, "d")
	wantErrno(t, root.Unlink("d", true), unix.ENOTEMPTY)
	must(t, d.Unlink("up", false))
	wantErrno(t, root.Unlink("d", true), unix.ENOTEMPTY)
	must(t, d.Unlink("low", false))
	must(t, root.Unlink("d", true))
	if !isDeviceWhiteout(t, filepath.Join(tu.upper, "d")) {
		t.Fatal("merged dir replaced by something other than a whiteout")
	}
}

func TestMkdirOverWhiteoutIsOpaque(t *testing.T) {
	tu := newUnion(t, nil, []string{"d/old=1"})
	root := tu.mustWalk(t, "/")
	d := tu.mustWalk(t, "d")
	must(t, d.Unlink("old", false))
	must(t, root.Unlink("d", true))
	nd, err := root.Mkdir("d", 0o750, Owner{UID: 7, GID: 8})
	must(t, err)
	nd.Release()
	if got := tu.list(t, "d"); len(got) != 0 {
		t.Fatalf("re-created dir shows %v from below", got)
	}
	v, err := getXattrPath(filepath.Join(tu.upper, "d"), "trusted.overlay.opaque", unix.Lgetxattr)
	if err != nil || string(v) != "y" {
		t.Fatalf("opaque xattr %q %v", v, err)
	}
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(tu.upper, "d"), &st))
	if st.Uid != 7 || st.Gid != 8 || st.Mode&0o7777 != 0o750 {
		t.Fatalf("owner %d:%d mode %o", st.Uid, st.Gid, st.Mode&0o7777)
	}
}

func TestCreateOverWhiteoutAndExisting(t *testing.T) {
	tu := newUnion(t, nil, []string{"f=old"})
	root := tu.mustWalk(t, "/")
	_, _, err := root.Create("f", unix.O_RDWR, 0o644, Owner{})
	wantErrno(t, err, unix.EEXIST)
	must(t, root.Unlink("f", false))
	n, f, err := root.Create("f", unix.O_RDWR, 0o4755, Owner{UID: 1000, GID: 1000})
	must(t, err)
	_, err = f.WriteAt([]byte("new"), 0)
	must(t, err)
	f.Close()
	a, err := n.Attr()
	must(t, err)
	n.Release()
	if a.UID != 1000 || a.Mode&0o7777 != 0o4755 {
		t.Fatalf("uid %d mode %o", a.UID, a.Mode&0o7777)
	}
	if got := tu.read(t, "f"); got != "new" {
		t.Fatalf("content %q", got)
	}
}

func TestRenameFileFromLower(t *testing.T) {
	tu := newUnion(t, nil, []string{"a/f=data", "b/"})
	a := tu.mustWalk(t, "a")
	b := tu.mustWalk(t, "b")
	must(t, a.Rename("f", b, "g"))
	if got := tu.read(t, "b/g"); got != "data" {
		t.Fatalf("content %q", got)
	}
	if !isDeviceWhiteout(t, filepath.Join(tu.upper, "a/f")) {
		t.Fatal("source of a lower file's rename left no whiteout")
	}
	_, err := tu.walk(t, "a/f")
	wantErrno(t, err, unix.ENOENT)
}

func TestRenameOverExistingAndErrors(t *testing.T) {
	tu := newUnion(t, []string{"up/"}, []string{"f=1", "g=2", "d/x=1", "e/", "lowdir/"})
	root := tu.mustWalk(t, "/")
	must(t, root.Rename("f", root, "g"))
	if got := tu.read(t, "g"); got != "1" {
		t.Fatalf("g = %q", got)
	}
	wantErrno(t, root.Rename("g", root, "d"), unix.EISDIR)
	wantErrno(t, root.Rename("up", root, "g"), unix.ENOTDIR)
	wantErrno(t, root.Rename("up", root, "d"), unix.ENOTEMPTY)
	wantErrno(t, root.Rename("lowdir", root, "moved"), unix.EXDEV)
	// An upper-only dir moved over an empty lower dir must hide it.
	must(t, root.Rename("up", root, "e"))
	v, err := getXattrPath(filepath.Join(tu.upper, "e"), "trusted.overlay.opaque", unix.Lgetxattr)
	if err != nil || string(v) != "y" {
		t.Fatalf("dir moved over a lower name is not opaque: %q %v", v, err)
	}
	_, err = tu.walk(t, "up")
	wantErrno(t, err, unix.ENOENT)
}

func TestRenameDirOverWhiteout(t *testing.T) {
	tu := newUnion(t, []string{"src/in=1"}, []string{"dst/old=1"})
	root := tu.mustWalk(t, "/")
	dst := tu.mustWalk(t, "dst")
	must(t, dst.Unlink("old", false))
	must(t, root.Unlink("dst", true))
	must(t, root.Rename("src", root, "dst"))
	if got := tu.list(t, "dst"); !slices.Equal(got, []string{"in"}) {
		t.Fatalf("dst lists %v", got)
	}
	_, err := tu.walk(t, "src")
	wantErrno(t, err, unix.ENOENT)
}

func TestLinkLowerFile(t *testing.T) {
	tu := newUnion(t, nil, []string{"f=1"})
	root := tu.mustWalk(t, "/")
	f := tu.mustWalk(t, "f")
	l, err := root.Link(f, "l")
	must(t, err)
	defer l.Release()
	a, err := l.Attr()
	must(t, err)
	if a.Nlink != 2 {
		t.Fatalf("nlink %d", a.Nlink)
	}
	wantErrno(t, func() error { _, err := root.Link(root, "x"); return err }(), unix.EPERM)
}

func TestSymlinkIsData(t *testing.T) {
	tu := newUnion(t, nil, []string{"out->../../../../etc", "abs->/etc"})
	for _, name := range []string{"out", "abs"} {
		n := tu.mustWalk(t, name)
		_, err := n.Lookup("passwd")
		wantErrno(t, err, unix.ENOTDIR)
		_, err = n.Open(unix.O_RDONLY)
		wantErrno(t, err, unix.ELOOP)
	}
	root := tu.mustWalk(t, "/")
	s, err := root.Symlink("new", "/etc/shadow", Owner{UID: 5, GID: 5})
	must(t, err)
	defer s.Release()
	target, err := s.Readlink()
	must(t, err)
	if target != "/etc/shadow" {
		t.Fatalf("target %q", target)
	}
}

func TestMknodKinds(t *testing.T) {
	tu := newUnion(t, nil, nil)
	root := tu.mustWalk(t, "/")
	for name, mode := range map[string]uint32{"fifo": unix.S_IFIFO | 0o644, "sock": unix.S_IFSOCK | 0o600, "null": unix.S_IFCHR | 0o666} {
		rdev := uint64(0)
		if mode&unix.S_IFMT == unix.S_IFCHR {
			rdev = unix.Mkdev(1, 3)
		}
		n, err := root.Mknod(name, mode, rdev, Owner{})
		must(t, err)
		a, err := n.Attr()
		must(t, err)
		n.Release()
		if a.Mode != mode || a.Rdev != rdev {
			t.Errorf("%s: mode %o rdev %d", name, a.Mode, a.Rdev)
		}
	}
	_, err := root.Mknod("wh", unix.S_IFCHR, 0, Owner{})
	wantErrno(t, err, unix.EPERM)
}

func TestPrivateXattrsHiddenAndRefused(t *testing.T) {
	tu := newUnion(t, []string{"d/+opaque"}, nil)
	d := tu.mustWalk(t, "d")
	names, err := d.ListXattr()
	must(t, err)
	for _, n := range names {
		if whiteout.IsPrivateXattr(n) {
			t.Errorf("listed %s", n)
		}
	}
	_, err = d.GetXattr("trusted.overlay.opaque")
	wantErrno(t, err, unix.ENODATA)
	for _, name := range []string{"trusted.overlay.redirect", "user.overlay.opaque", "trusted.overlay.union9p.id"} {
		wantErrno(t, d.SetXattr(name, []byte("/etc"), 0), unix.EPERM)
		wantErrno(t, d.RemoveXattr(name), unix.EPERM)
	}
	must(t, d.SetXattr("user.ok", []byte("v"), 0))
	v, err := d.GetXattr("user.ok")
	must(t, err)
	if string(v) != "v" {
		t.Fatalf("got %q", v)
	}
}

func TestStableIDsUniqueAcrossLayers(t *testing.T) {
	tu := newUnion(t, []string{"u=1"}, []string{"a=1", "d/x=1"}, []string{"b=1", "d/y=1"})
	seen := map[uint64]string{}
	for _, p := range []string{"/", "u", "a", "b", "d", "d/x", "d/y"} {
		a, err := tu.mustWalk(t, p).Attr()
		must(t, err)
		if a.ID == 0 {
			t.Errorf("%s has id 0", p)
		}
		if other, dup := seen[a.ID]; dup {
			t.Errorf("%s and %s share id %x", p, other, a.ID)
		}
		seen[a.ID] = p
	}
}

func TestRenameOntoItselfChangesNothing(t *testing.T) {
	tu := newUnion(t, nil, []string{"f=1", "d/"})
	root := tu.mustWalk(t, "/")
	must(t, root.Rename("f", root, "f"))
	must(t, root.Rename("d", root, "d"))
	if ents, _ := os.ReadDir(tu.upper); len(ents) != 0 {
		t.Fatalf("rename onto itself wrote to the upper: %v", ents)
	}
	if got := tu.read(t, "f"); got != "1" {
		t.Fatalf("f = %q", got)
	}
}

func TestCopyUpKeepsParentTimes(t *testing.T) {
	tu := newUnion(t, nil, []string{"d/f=1"})
	ts := []unix.Timespec{{Sec: 1111, Nsec: 5}, {Sec: 2222, Nsec: 7}}
	must(t, unix.UtimesNano(filepath.Join(tu.lowers[0], "d"), ts))
	tu.setupDone(t)
	f := tu.mustWalk(t, "d/f")
	must(t, f.SetAttr(SetAttr{SetMode: true, Mode: 0o600}))
	a, err := tu.mustWalk(t, "d").Attr()
	must(t, err)
	if a.Mtime != ts[1] {
		t.Fatalf("parent mtime %v after a copy-up, want %v", a.Mtime, ts[1])
	}
}
