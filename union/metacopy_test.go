package union

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func withMetacopy(t *testing.T, tu *testUnion) {
	t.Helper()
	tu.Union.Close()
	u, err := Open(Options{Lowers: tu.lowers, Upper: tu.upper, Workdir: tu.work, RedirectDir: RedirectOn, Metacopy: true})
	must(t, err)
	tu.Union = u
}

// TestMetacopyChownCopiesNoData: a chown of a lower file with Metacopy
// copies its metadata only (the upper file has the size, no data blocks,
// the marker); reads still show the lower data, also after a rename; the
// first write copies the data in and drops the marker.
func TestMetacopyChownCopiesNoData(t *testing.T) {
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i)
	}
	tu := newUnion(t, nil, []string{"d/f=x"})
	must(t, os.WriteFile(filepath.Join(tu.lowers[0], "d/f"), big, 0o644))
	tu.setupDone(t)
	withMetacopy(t, tu)
	f := tu.mustWalk(t, "/d/f")
	must(t, f.SetAttr(SetAttr{SetUID: true, UID: 1000, SetGID: true, GID: 1000}))

	p := filepath.Join(tu.upper, "d/f")
	var st unix.Stat_t
	must(t, unix.Lstat(p, &st))
	if st.Size != int64(len(big)) || st.Blocks != 0 || st.Uid != 1000 {
		t.Errorf("upper copy: size %d blocks %d uid %d; want size %d, no blocks, uid 1000", st.Size, st.Blocks, st.Uid, len(big))
	}
	if _, err := unix.Lgetxattr(p, "trusted.overlay.metacopy", nil); err != nil {
		t.Errorf("upper copy has no metacopy marker: %v", err)
	}
	a, err := f.Attr()
	must(t, err)
	if a.UID != 1000 || a.Size != uint64(len(big)) || a.Blocks == 0 {
		t.Errorf("Attr: uid %d size %d blocks %d; want 1000, %d, the lower's blocks", a.UID, a.Size, a.Blocks, len(big))
	}
	if got, _ := readAllNode(tu.mustWalk(t, "/d/f")); got != string(big) {
		t.Errorf("read through a metadata-only copy: %d bytes, not the lower data", len(got))
	}

	d := tu.mustWalk(t, "/d")
	root := tu.mustWalk(t, "/")
	must(t, d.Rename("f", root, "g"))
	if got := redirectOf(t, filepath.Join(tu.upper, "g")); got != "/d/f" {
		t.Errorf("redirect of the moved metadata-only copy = %q, want /d/f", got)
	}
	if got, _ := readAllNode(tu.mustWalk(t, "/g")); got != string(big) {
		t.Errorf("read after the move: %d bytes, not the lower data", len(got))
	}

	g := tu.mustWalk(t, "/g")
	w, err := g.Open(unix.O_WRONLY)
	must(t, err)
	_, err = w.WriteAt([]byte("new"), 0)
	must(t, err)
	w.Close()
	if _, err := unix.Lgetxattr(filepath.Join(tu.upper, "g"), "trusted.overlay.metacopy", nil); err != unix.ENODATA {
		t.Errorf("marker after the data copy-up: %v, want ENODATA", err)
	}
	want := "new" + string(big[3:])
	if got, _ := readAllNode(tu.mustWalk(t, "/g")); got != want {
		t.Errorf("read after a write: the data was not copied in")
	}
	// The Node that still held the object sees the data copy too.
	if got, err := readAllNode(f); err != nil || got != want {
		t.Errorf("read through the Node held from before: %v", err)
	}
}

func readAllNode(n *Node) (string, error) {
	f, err := n.Open(unix.O_RDONLY)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var out []byte
	buf := make([]byte, 1<<16)
	for off := int64(0); ; {
		k, err := f.ReadAt(buf, off)
		out = append(out, buf[:k]...)
		off += int64(k)
		if err != nil || k == 0 {
			return string(out), nil
		}
	}
}

// TestMetacopyMissingDataIsEIO: a metadata-only copy whose data is in no
// lower layer is never served as an empty file.
func TestMetacopyMissingDataIsEIO(t *testing.T) {
	tu := newUnion(t, []string{"f="}, []string{"other=1"})
	p := filepath.Join(tu.upper, "f")
	must(t, os.Truncate(p, 100))
	must(t, unix.Setxattr(p, "trusted.overlay.metacopy", nil, 0))
	withMetacopy(t, tu)
	_, err := tu.walk(t, "f")
	wantErrno(t, err, unix.EIO)
}
