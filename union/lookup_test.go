package union

import (
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLookupTopDown(t *testing.T) {
	tu := newUnion(t,
		[]string{"a=upper", "gone!"},
		[]string{"a=l1", "b=l1", "gone=l1", "d/x=l1"},
		[]string{"b=l2", "c=l2", "d/y=l2", "d/x=l2"})
	for path, want := range map[string]string{"a": "upper", "b": "l1", "c": "l2", "d/x": "l1", "d/y": "l2"} {
		if got := tu.read(t, path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	_, err := tu.walk(t, "gone")
	wantErrno(t, err, unix.ENOENT)
}

func TestLookupOpaqueStopsMerge(t *testing.T) {
	tu := newUnion(t, nil,
		[]string{"d/+opaque", "d/top=1"},
		[]string{"d/below=1"})
	if got := tu.list(t, "d"); !slices.Equal(got, []string{"top"}) {
		t.Fatalf("opaque dir lists %v", got)
	}
	_, err := tu.walk(t, "d/below")
	wantErrno(t, err, unix.ENOENT)
}

func TestLookupNonDirBelowDirEndsMerge(t *testing.T) {
	tu := newUnion(t, nil, []string{"d/x=1"}, []string{"d=file"})
	if got := tu.list(t, "d"); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("got %v", got)
	}
}

func TestLookupRejectsHostileNames(t *testing.T) {
	tu := newUnion(t, nil, []string{"a=1"})
	root := tu.mustWalk(t, "/")
	for _, name := range []string{"", ".", "..", "a/b", "../etc", "a\x00b"} {
		_, err := root.Lookup(name)
		wantErrno(t, err, unix.EINVAL)
	}
	long := make([]byte, 256)
	for i := range long {
		long[i] = 'x'
	}
	_, err := root.Lookup(string(long))
	wantErrno(t, err, unix.ENAMETOOLONG)
}

func TestLookupOCIWhiteouts(t *testing.T) {
	tu := newUnion(t, nil,
		[]string{".wh.hidden=", "d/.wh..wh..opq=", "d/new=1"},
		[]string{"hidden=l2", "shown=l2", "d/old=l2"})
	if got := tu.list(t, "/"); !slices.Equal(got, []string{"d", "shown"}) {
		t.Fatalf("root lists %v", got)
	}
	if got := tu.list(t, "d"); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("d lists %v", got)
	}
	_, err := tu.walk(t, "hidden")
	wantErrno(t, err, unix.ENOENT)
}

// OCI markers are a lower-layer format: a client may create a file named
// like one in the upper without hiding anything.
func TestOCIMarkerNamesInUpperAreFiles(t *testing.T) {
	tu := newUnion(t, nil, []string{"d/keep=1", "x=1"})
	d := tu.mustWalk(t, "d")
	for _, name := range []string{".wh..wh..opq", ".wh.keep"} {
		n, f, err := d.Create(name, unix.O_RDWR, 0o644, Owner{})
		must(t, err)
		f.Close()
		n.Release()
	}
	if got := tu.list(t, "d"); !slices.Equal(got, []string{".wh..wh..opq", ".wh.keep", "keep"}) {
		t.Fatalf("d lists %v", got)
	}
	if got := tu.read(t, "d/keep"); got != "1" {
		t.Fatalf("keep = %q", got)
	}
}

// A lower layer bind-mounted inside the upper is met as a trap: the union
// answers ELOOP rather than letting writes reach the lower by another name.
func TestLayerRootInsideAnotherLayerIsATrap(t *testing.T) {
	tu := newUnion(t, []string{"mnt/"}, []string{"f=lower"})
	mnt := filepath.Join(tu.upper, "mnt")
	if err := unix.Mount(tu.lowers[0], mnt, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind mount: %v", err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	_, err := tu.walk(t, "mnt")
	wantErrno(t, err, unix.ELOOP)
	// The file itself still reads through its own layer.
	if got := tu.read(t, "f"); got != "lower" {
		t.Fatalf("f = %q", got)
	}
}
