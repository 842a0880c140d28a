package union

import (
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// withRedirects reopens tu's layers with RedirectOn (newUnion opens them
// with the zero Options, RedirectOff).
func withRedirects(t *testing.T, tu *testUnion) {
	t.Helper()
	tu.Union.Close()
	u, err := Open(Options{Lowers: tu.lowers, Upper: tu.upper, Workdir: tu.work, RedirectDir: RedirectOn})
	must(t, err)
	tu.Union = u
}

func redirectOf(t *testing.T, path string) string {
	t.Helper()
	v, err := getXattrPath(path, "trusted.overlay.redirect", unix.Lgetxattr)
	if err != nil {
		return ""
	}
	return string(v)
}

// TestRenameMergedDirWritesRedirects: a directory with lower parts renamed
// within its directory gets a relative redirect, moved to another one an
// absolute redirect, and shows its merged content at each new name; its
// old names are whited out; it can then be emptied and removed.
func TestRenameMergedDirWritesRedirects(t *testing.T) {
	tu := newUnion(t, []string{"d/up=u"}, []string{"d/x=1", "d/sub/y=2", "other/"}, []string{"d/z=3"})
	withRedirects(t, tu)
	root := tu.mustWalk(t, "/")
	must(t, root.Rename("d", root, "e"))
	if got := redirectOf(t, filepath.Join(tu.upper, "e")); got != "d" {
		t.Errorf("redirect after a rename in one directory = %q, want \"d\"", got)
	}
	want := []string{"sub", "up", "x", "z"}
	if got := tu.list(t, "e"); !slices.Equal(got, want) {
		t.Errorf("e lists %q, want %q", got, want)
	}
	_, err := tu.walk(t, "d")
	wantErrno(t, err, unix.ENOENT)

	other := tu.mustWalk(t, "/other")
	must(t, root.Rename("e", other, "moved"))
	if got := redirectOf(t, filepath.Join(tu.upper, "other/moved")); got != "/d" {
		t.Errorf("redirect after a move = %q, want \"/d\"", got)
	}
	if got := tu.read(t, "other/moved/sub/y"); got != "2" {
		t.Errorf("other/moved/sub/y = %q, want 2", got)
	}
	// A subdirectory moved out of the moved directory: its absolute path
	// goes through its parent's redirect.
	sub := tu.mustWalk(t, "/other/moved")
	must(t, sub.Rename("sub", root, "s2"))
	if got := redirectOf(t, filepath.Join(tu.upper, "s2")); got != "/d/sub" {
		t.Errorf("redirect of a subdirectory moved out = %q, want \"/d/sub\"", got)
	}
	if got := tu.read(t, "s2/y"); got != "2" {
		t.Errorf("s2/y = %q, want 2", got)
	}

	// A union opened again on the upper reads the same.
	withRedirects(t, tu)
	if got := tu.list(t, "other/moved"); !slices.Equal(got, []string{"up", "x", "z"}) {
		t.Errorf("after reopening, other/moved lists %q", got)
	}
	for _, p := range []string{"other/moved/up", "other/moved/x", "other/moved/z"} {
		dir := tu.mustWalk(t, filepath.Dir("/"+p))
		must(t, dir.Unlink(filepath.Base(p), false))
	}
	other = tu.mustWalk(t, "/other")
	must(t, other.Unlink("moved", true))
	if got := tu.list(t, "other"); len(got) != 0 {
		t.Errorf("other after removing moved lists %q", got)
	}
}

// TestRenameMergedDirOff: without RedirectOn, such a rename answers EXDEV
// (mv then copies), and redirects already in the upper are followed.
func TestRenameMergedDirOff(t *testing.T) {
	tu := newUnion(t, []string{"e/", "d!"}, []string{"d/x=1"})
	must(t, unix.Setxattr(filepath.Join(tu.upper, "e"), "trusted.overlay.redirect", []byte("d"), 0))
	root := tu.mustWalk(t, "/")
	wantErrno(t, root.Rename("e", root, "f"), unix.EXDEV)
	if got := tu.read(t, "e/x"); got != "1" {
		t.Errorf("e/x through a redirect = %q, want 1", got)
	}
}
