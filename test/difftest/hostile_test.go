package difftest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// These tests treat the host and the client as hostile: symbolic links in
// the layers that point out of them, directories swapped for symbolic
// links behind a held Node, names that are not a single component, and
// attempts to read or write the union's own markers. Each runs on a union
// of hand-made layers next to a sentinel directory, and checks at its end
// that neither the lowers nor the sentinel changed.

// hostileEnv is a union of two hand-made lowers and an upper, with a
// sentinel directory beside them.
type hostileEnv struct {
	lowers   []string
	upper    string
	sentinel string // holds secret, sub/secret
	fs       *unionFS
}

// newHostileEnv materializes the lowers (topmost first) that build returns
// for the sentinel's path, opens union on them, and registers the check
// that nothing outside the upper changed.
func newHostileEnv(t *testing.T, build func(sentinel string) [2]layerSpec) *hostileEnv {
	t.Helper()
	requireRoot(t)
	dir := scratchDir(t)
	e := &hostileEnv{sentinel: makeSentinel(t, dir)}
	if err := unix.Lsetxattr(filepath.Join(e.sentinel, "secret"), "user.owner", []byte("sentinel"), 0); err != nil {
		t.Fatal(err)
	}
	e.lowers = mkdirs(t, dir, "lower1", "lower2")
	for i, l := range build(e.sentinel) {
		materialize(t, l, e.lowers[i])
	}
	dirs := mkdirs(t, dir, "upper", "work")
	e.upper = dirs[0]
	before := map[string]hostSnapshot{e.sentinel: snapshotHost(t, e.sentinel)}
	for _, l := range e.lowers {
		before[l] = snapshotHost(t, l)
	}
	var err error
	e.fs, err = openUnionFS(union.Options{Lowers: e.lowers, Upper: e.upper, Workdir: dirs[1]})
	if err != nil {
		t.Fatalf("union.Open: %v", err)
	}
	t.Cleanup(func() {
		e.fs.Close()
		for dir, snap := range before {
			requireUnchanged(t, dir, snap, snapshotHost(t, dir))
		}
	})
	return e
}

// node walks to p and releases the node when the test ends.
func (e *hostileEnv) node(t *testing.T, p string) *union.Node {
	t.Helper()
	n, err := e.fs.walk(p)
	if err != nil {
		t.Fatalf("walk %q: %v", p, err)
	}
	t.Cleanup(n.Release)
	return n
}

// wantErrno fails unless err carries exactly want.
func wantErrno(t *testing.T, what string, err error, want unix.Errno) {
	t.Helper()
	var got unix.Errno
	if !errors.As(err, &got) || got != want {
		t.Errorf("%s: got %v (%s), want %s", what, err, renderErr(err), unix.ErrnoName(want))
	}
}

// wantError fails unless err is an error; any errno will do.
func wantError(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, want an error", what)
	}
}

// escapingLinks are symbolic links in a lower layer that point out of it.
func escapingLinks(sentinel string) map[string]string {
	return map[string]string{
		"etc":        "/etc",
		"up":         "../../../../../../..",
		"abs":        sentinel,
		"rel":        "../sentinel",
		"d/deep":     "../../sentinel",
		"secretfile": filepath.Join(sentinel, "secret"),
	}
}

func escapingLayers(sentinel string) [2]layerSpec {
	top := layerSpec{Entries: []layerEntry{{Path: "d", Kind: kindDir, Mode: 0o755}}}
	for name, target := range escapingLinks(sentinel) {
		top.Entries = append(top.Entries, layerEntry{Path: name, Kind: kindSymlink, Target: target})
	}
	return [2]layerSpec{top, {}}
}

// TestSymlinkOutsideIsData checks that a symbolic link pointing out of the
// layers is returned as data and never followed: not by Lookup below it,
// not by opening, listing, chmod, truncate or xattrs on its node, whether
// it lives in a lower or was created in the upper.
func TestSymlinkOutsideIsData(t *testing.T) {
	e := newHostileEnv(t, escapingLayers)
	links := escapingLinks(e.sentinel)
	// The same links again, made through union in the upper.
	root := e.node(t, "")
	for name, target := range escapingLinks(e.sentinel) {
		upperName := "u-" + strings.ReplaceAll(name, "/", "-")
		n, err := root.Symlink(upperName, target, union.Owner{})
		if err != nil {
			t.Fatalf("Symlink %s: %v", upperName, err)
		}
		n.Release()
		links[upperName] = target
	}
	for name, target := range links {
		t.Run(strings.ReplaceAll(name, "/", "-"), func(t *testing.T) {
			n := e.node(t, name)
			got, err := n.Readlink()
			if err != nil || got != target {
				t.Errorf("Readlink = %q, %v; want %q", got, err, target)
			}
			if a, err := n.Attr(); err != nil || a.Mode&unix.S_IFMT != unix.S_IFLNK {
				t.Errorf("Attr = %07o, %v; want a symbolic link", a.Mode, err)
			}
			for _, child := range []string{"passwd", "secret", "sub"} {
				c, err := n.Lookup(child)
				if err == nil {
					c.Release()
				}
				wantErrno(t, "Lookup "+child+" below the link", err, unix.ENOTDIR)
			}
			if f, err := n.Open(unix.O_RDONLY); err == nil {
				ents, _ := f.ReadDir(0, 100)
				buf := make([]byte, 64)
				m, _ := f.ReadAt(buf, 0)
				f.Close()
				t.Errorf("Open(O_RDONLY) of the link succeeded; it read %q and listed %v", buf[:m], ents)
			}
			if name == "etc" {
				return // never try to write below the real /etc
			}
			for _, mk := range []struct {
				what string
				fn   func() error
			}{
				{"Create", func() error { return createdFile(n.Create("new", unix.O_RDWR, 0o644, union.Owner{})) }},
				{"Mkdir", func() error { return created(n.Mkdir("new", 0o755, union.Owner{})) }},
				{"Symlink", func() error { return created(n.Symlink("new", "x", union.Owner{})) }},
				{"Mknod", func() error { return created(n.Mknod("new", unix.S_IFIFO|0o644, 0, union.Owner{})) }},
				{"Unlink", func() error { return n.Unlink("secret", false) }},
				{"Rmdir", func() error { return n.Unlink("sub", true) }},
				{"Rename from below", func() error { return n.Rename("secret", root, "stolen") }},
				{"Rename to below", func() error { return root.Rename("d", n, "planted") }},
			} {
				wantErrno(t, mk.what+" below the link", mk.fn(), unix.ENOTDIR)
			}
			if f, err := n.Open(unix.O_WRONLY | unix.O_TRUNC); err == nil {
				f.WriteAt([]byte("pwned"), 0)
				f.Close()
				t.Errorf("Open(O_WRONLY|O_TRUNC) of the link succeeded")
			}
			wantError(t, "SetAttr size of the link", n.SetAttr(union.SetAttr{SetSize: true, Size: 0}))
			wantError(t, "SetXattr user.* on the link", n.SetXattr("user.owner", []byte("pwned"), 0))
			// chmod of a link itself is refused by Linux; either way the
			// target must keep its mode (checked with the sentinel).
			n.SetAttr(union.SetAttr{SetMode: true, Mode: 0o777})
		})
	}
}

// TestSymlinkOutsideLinkAndRename checks that hard-linking and renaming an
// escaping link (which copies it up) move the link, not what it points to.
func TestSymlinkOutsideLinkAndRename(t *testing.T) {
	e := newHostileEnv(t, escapingLayers)
	root := e.node(t, "")
	link := e.node(t, "secretfile")
	n, err := root.Link(link, "linked")
	if err != nil {
		t.Fatalf("Link: %v", err)
	}
	n.Release()
	if err := root.Rename("abs", root, "renamed"); err != nil {
		t.Fatalf("Rename: %v", err)
	}
	want := map[string]string{"linked": filepath.Join(e.sentinel, "secret"), "renamed": e.sentinel, "secretfile": filepath.Join(e.sentinel, "secret")}
	for name, target := range want {
		if got, err := e.fs.Readlink(name); err != nil || got != target {
			t.Errorf("Readlink %s = %q, %v; want %q", name, got, err, target)
		}
	}
	for _, p := range []string{"linked", "renamed"} {
		if fi, err := os.Lstat(filepath.Join(e.upper, p)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("upper %s: %v, %v; want a symbolic link", p, fi, err)
		}
	}
}

// created releases the node a successful create call returned, and
// returns the call's error: created(dir.Mkdir(...)).
func created(n *union.Node, err error) error {
	if err == nil {
		n.Release()
	}
	return err
}

// createdFile is created for Create, which also opens the file.
func createdFile(n *union.Node, f *union.File, err error) error {
	if err == nil {
		f.Close()
		n.Release()
	}
	return err
}

// TestDirSwappedForSymlinkUnderHeldNode swaps, on the host, a directory of
// the upper for a symbolic link to the sentinel while a Node for it (or
// for a directory below it) is held, then works through the held node.
// Whatever each call returns, nothing may reach the sentinel, and a fresh
// walk must see the link as a link.
func TestDirSwappedForSymlinkUnderHeldNode(t *testing.T) {
	layers := func(string) [2]layerSpec {
		return [2]layerSpec{{Entries: []layerEntry{
			{Path: "low", Kind: kindDir, Mode: 0o755},
			{Path: "low/inner", Kind: kindDir, Mode: 0o755},
			{Path: "low/inner/f", Kind: kindFile, Mode: 0o644, Data: []byte("lower\n")},
		}}, {}}
	}
	cases := []struct {
		name string
		// hold returns the held node after changing the host under it;
		// swapped is the upper's root entry that is now a link.
		hold    func(t *testing.T, e *hostileEnv) *union.Node
		swapped string
	}{
		{
			name: "upper dir made by union",
			hold: func(t *testing.T, e *hostileEnv) *union.Node {
				if err := e.fs.Mkdir("made", 0o755); err != nil {
					t.Fatal(err)
				}
				n := e.node(t, "made")
				hostSwap(t, e, "made")
				return n
			},
			swapped: "made",
		},
		{
			name: "lower-only dir whose upper name becomes a link before copy-up",
			hold: func(t *testing.T, e *hostileEnv) *union.Node {
				n := e.node(t, "low/inner")
				if err := os.Symlink(e.sentinel, filepath.Join(e.upper, "low")); err != nil {
					t.Fatal(err)
				}
				return n
			},
			swapped: "low",
		},
		{
			name: "copied-up dir",
			hold: func(t *testing.T, e *hostileEnv) *union.Node {
				if err := e.fs.Chmod("low/inner", 0o750); err != nil {
					t.Fatal(err)
				}
				n := e.node(t, "low/inner")
				hostSwap(t, e, "low")
				return n
			},
			swapped: "low",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newHostileEnv(t, layers)
			workThroughHeldNode(t, e, tc.hold(t, e))
			if fi, err := e.fs.Lstat(tc.swapped); err != nil || fi.typ() != unix.S_IFLNK {
				t.Errorf("fresh walk of %q: %v, %v; want the swapped-in symbolic link", tc.swapped, fi, err)
			}
			_, err := e.fs.Lstat(tc.swapped + "/secret")
			wantErrno(t, "walk through the swapped-in link", err, unix.ENOTDIR)
		})
	}
}

// hostSwap renames the upper's directory name aside and puts a symbolic
// link to the sentinel in its place, as a hostile host user could.
func hostSwap(t *testing.T, e *hostileEnv, name string) {
	t.Helper()
	p := filepath.Join(e.upper, name)
	if err := os.Rename(p, p+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(e.sentinel, p); err != nil {
		t.Fatal(err)
	}
}

// workThroughHeldNode tries every kind of change and read through n. The
// results are not checked (the node may keep working on the directory it
// holds, or fail); the sentinel check at the end of the test is what
// counts, plus: a held node must not list or find the sentinel's names.
func workThroughHeldNode(t *testing.T, e *hostileEnv, n *union.Node) {
	t.Helper()
	root := e.node(t, "")
	createdFile(n.Create("created", unix.O_RDWR, 0o644, union.Owner{}))
	created(n.Mkdir("madedir", 0o755, union.Owner{}))
	created(n.Symlink("madelink", "x", union.Owner{}))
	created(n.Mknod("madefifo", unix.S_IFIFO|0o644, 0, union.Owner{}))
	n.Unlink("secret", false)
	n.Unlink("sub", true)
	n.Rename("secret", root, "stolen")
	n.SetXattr("user.owner", []byte("pwned"), 0)
	n.SetAttr(union.SetAttr{SetMode: true, Mode: 0o777})
	if c, err := n.Lookup("secret"); err == nil {
		c.Release()
		t.Errorf("Lookup(secret) through the held node found the sentinel's file")
	}
	if f, err := n.Open(unix.O_RDONLY); err == nil {
		ents, _ := f.ReadDir(0, 1000)
		f.Close()
		for _, d := range ents {
			if d.Name == "secret" || d.Name == "sub" {
				t.Errorf("ReadDir through the held node lists the sentinel's %q", d.Name)
			}
		}
	}
}

// TestFileSwappedForSymlinkUnderHeldNode swaps an upper file for a link
// to the sentinel's file while its Node is held; writing, truncating and
// xattrs through the node must not reach the sentinel.
func TestFileSwappedForSymlinkUnderHeldNode(t *testing.T) {
	e := newHostileEnv(t, func(string) [2]layerSpec { return [2]layerSpec{} })
	if err := e.fs.Create("f", 0o644); err != nil {
		t.Fatal(err)
	}
	n := e.node(t, "f")
	p := filepath.Join(e.upper, "f")
	if err := os.Rename(p, p+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(e.sentinel, "secret"), p); err != nil {
		t.Fatal(err)
	}
	if f, err := n.Open(unix.O_WRONLY | unix.O_TRUNC); err == nil {
		f.WriteAt([]byte("pwned"), 0)
		f.Close()
	}
	n.SetAttr(union.SetAttr{SetSize: true, Size: 0})
	n.SetAttr(union.SetAttr{SetMode: true, Mode: 0o777})
	n.SetXattr("user.owner", []byte("pwned"), 0)
	n.RemoveXattr("user.owner")
}

// TestBadNamesAreRefused checks that every call taking a name refuses one
// that is not a single directory entry, with EINVAL (ENAMETOOLONG past 255
// bytes), and changes nothing; names that merely look odd are accepted.
func TestBadNamesAreRefused(t *testing.T) {
	layers := func(string) [2]layerSpec {
		return [2]layerSpec{{Entries: []layerEntry{
			{Path: "a", Kind: kindDir, Mode: 0o755},
			{Path: "a/b", Kind: kindFile, Mode: 0o644, Data: []byte("a/b\n")},
			{Path: "file", Kind: kindFile, Mode: 0o644, Data: []byte("file\n")},
		}}, {}}
	}
	e := newHostileEnv(t, layers)
	root := e.node(t, "")
	a := e.node(t, "a")
	file := e.node(t, "file")
	before := captureTree(e.fs)
	bad := []struct {
		name string
		want unix.Errno
	}{
		{"", unix.EINVAL},
		{".", unix.EINVAL},
		{"..", unix.EINVAL},
		{"a/b", unix.EINVAL},
		{"/", unix.EINVAL},
		{"../file", unix.EINVAL},
		{"b\x00", unix.EINVAL},
		{"a\x00b", unix.EINVAL},
		{strings.Repeat("x", 256), unix.ENAMETOOLONG},
	}
	calls := []struct {
		what string
		fn   func(name string) error
	}{
		{"Lookup", func(name string) error { return created(root.Lookup(name)) }},
		{"Lookup in subdir", func(name string) error { return created(a.Lookup(name)) }},
		{"Create", func(name string) error { return createdFile(root.Create(name, unix.O_RDWR, 0o644, union.Owner{})) }},
		{"Mkdir", func(name string) error { return created(root.Mkdir(name, 0o755, union.Owner{})) }},
		{"Symlink", func(name string) error { return created(root.Symlink(name, "target", union.Owner{})) }},
		{"Mknod", func(name string) error { return created(root.Mknod(name, unix.S_IFIFO|0o644, 0, union.Owner{})) }},
		{"Link", func(name string) error { return created(root.Link(file, name)) }},
		{"Unlink", func(name string) error { return root.Unlink(name, false) }},
		{"Unlink dir", func(name string) error { return a.Unlink(name, true) }},
		{"Rename old name", func(name string) error { return root.Rename(name, root, "renamed") }},
		{"Rename new name", func(name string) error { return root.Rename("file", root, name) }},
	}
	for _, c := range calls {
		for _, b := range bad {
			wantErrno(t, c.what+"("+strings.ToValidUTF8(b.name, "?")+")", c.fn(b.name), b.want)
		}
	}
	for _, d := range diffTrees(before, captureTree(e.fs), 0) {
		t.Errorf("a refused call changed the tree: %s", d)
	}
	// Odd but valid names must work, or the refusals above prove nothing.
	for _, name := range []string{strings.Repeat("y", 255), "...", ".hidden", "a b", "\\", "é"} {
		c, f, err := root.Create(name, unix.O_RDWR, 0o644, union.Owner{})
		if err != nil {
			t.Errorf("Create(%q): %v", name, err)
			continue
		}
		f.Close()
		c.Release()
		if _, err := e.fs.Lstat(name); err != nil {
			t.Errorf("Lstat(%q) after Create: %v", name, err)
		}
	}
}

// TestPrivateXattrsAreRefusedAndHidden checks that a client can neither
// set, remove, read nor list overlay markers (trusted.overlay.* and
// user.overlay.*) on any kind of object, that markers in the layers keep
// working after the attempts, and that no refused value reached the host.
func TestPrivateXattrsAreRefusedAndHidden(t *testing.T) {
	layers := func(string) [2]layerSpec {
		return [2]layerSpec{
			{Entries: []layerEntry{
				{Path: "opaque", Kind: kindDir, Mode: 0o755, Opaque: true},
				{Path: "opaque/top", Kind: kindFile, Mode: 0o644},
				{Path: "gone", Kind: kindWhiteout},
				{Path: "lowerfile", Kind: kindFile, Mode: 0o644, Data: []byte("x")},
			}},
			{Entries: []layerEntry{
				{Path: "opaque", Kind: kindDir, Mode: 0o755},
				{Path: "opaque/hidden", Kind: kindFile, Mode: 0o644},
				{Path: "gone", Kind: kindFile, Mode: 0o644},
			}},
		}
	}
	e := newHostileEnv(t, layers)
	if err := e.fs.Create("upperfile", 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.fs.Mkdir("upperdir", 0o755); err != nil {
		t.Fatal(err)
	}
	const value = "client-set-private-value"
	private := []string{
		"trusted.overlay.opaque", "trusted.overlay.redirect", "trusted.overlay.origin",
		"trusted.overlay.whiteout", "trusted.overlay.union9p.id", "trusted.overlay.",
		"user.overlay.opaque", "user.overlay.whiteout", "user.overlay.redirect", "user.overlay.",
	}
	for _, p := range []string{"", "opaque", "lowerfile", "upperfile", "upperdir"} {
		n := e.node(t, p)
		for _, name := range private {
			what := "/" + p + " " + name
			wantErrno(t, "SetXattr "+what, n.SetXattr(name, []byte(value), 0), unix.EPERM)
			wantErrno(t, "SetXattr CREATE "+what, n.SetXattr(name, []byte(value), unix.XATTR_CREATE), unix.EPERM)
			wantErrno(t, "RemoveXattr "+what, n.RemoveXattr(name), unix.EPERM)
			_, err := n.GetXattr(name)
			wantErrno(t, "GetXattr "+what, err, unix.ENODATA)
		}
		// A plain user xattr works, and copy-up (for the lower objects)
		// adds no visible name.
		if err := n.SetXattr("user.fine", []byte("ok"), 0); err != nil {
			t.Errorf("SetXattr /%s user.fine: %v", p, err)
		}
		names, err := n.ListXattr()
		if err != nil {
			t.Errorf("ListXattr /%s: %v", p, err)
		}
		if !strings.Contains(strings.Join(names, " "), "user.fine") {
			t.Errorf("ListXattr /%s = %q, want user.fine listed", p, names)
		}
		for _, name := range names {
			if strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
				t.Errorf("ListXattr /%s lists private %q", p, name)
			}
		}
	}
	if _, err := e.fs.Lstat("opaque/hidden"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("opaque/hidden after the attempts: %v, want ENOENT (still opaque)", err)
	}
	if _, err := e.fs.Lstat("gone"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("gone after the attempts: %v, want ENOENT (still whited out)", err)
	}
	for path, desc := range snapshotHost(t, e.upper) {
		if strings.Contains(desc, value) {
			t.Errorf("upper %s carries a refused value: %s", path, desc)
		}
	}
}

// TestNonDirectoryNodeRefusesNames checks that the calls that take a name
// in a directory give ENOTDIR on a node that is not one (a client can send
// them on any fid), for a lower file, an upper file and a FIFO.
func TestNonDirectoryNodeRefusesNames(t *testing.T) {
	e := newHostileEnv(t, func(string) [2]layerSpec {
		return [2]layerSpec{{Entries: []layerEntry{
			{Path: "lowerfile", Kind: kindFile, Mode: 0o644, Data: []byte("x")},
			{Path: "fifo", Kind: kindFifo, Mode: 0o644},
		}}, {}}
	})
	if err := e.fs.Create("upperfile", 0o644); err != nil {
		t.Fatal(err)
	}
	root := e.node(t, "")
	target := e.node(t, "upperfile")
	for _, p := range []string{"lowerfile", "upperfile", "fifo"} {
		n := e.node(t, p)
		for _, c := range []struct {
			what string
			err  error
		}{
			{"Lookup", func() error { return created(n.Lookup("x")) }()},
			{"Create", func() error { return createdFile(n.Create("x", unix.O_RDWR, 0o644, union.Owner{})) }()},
			{"Mkdir", func() error { return created(n.Mkdir("x", 0o755, union.Owner{})) }()},
			{"Symlink", func() error { return created(n.Symlink("x", "t", union.Owner{})) }()},
			{"Link", func() error { return created(n.Link(target, "x")) }()},
			{"Unlink", n.Unlink("x", false)},
			{"Rename from", n.Rename("x", root, "y")},
			{"Rename into", root.Rename(p, n, "y")},
		} {
			wantErrno(t, c.what+" in /"+p, c.err, unix.ENOTDIR)
		}
	}
}
