package union

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLowerNameSets: lookups answered from the cached names of lower
// directories give what asking every layer gives: names found in the
// layer that has them, OCI markers and whiteouts honoured, absent names
// absent, a name made in the upper seen at once (the upper is never
// cached).
func TestLowerNameSets(t *testing.T) {
	tu := newUnion(t, nil,
		[]string{"d/top=1", "d/.wh.oci"},
		[]string{"d/mid=2", "d/dev!"},
		[]string{"d/bottom=3", "d/oci=hidden", "d/dev=hidden"})
	d := tu.mustWalk(t, "/d")
	for round := range 2 { // the second round is answered from the sets
		for name, want := range map[string]string{"top": "1", "mid": "2", "bottom": "3"} {
			if got := tu.read(t, "d/"+name); got != want {
				t.Errorf("round %d: d/%s = %q, want %q", round, name, got, want)
			}
		}
		for _, name := range []string{"oci", "dev", "absent", ".wh.oci"} {
			_, err := d.Lookup(name)
			wantErrno(t, err, unix.ENOENT)
		}
	}
	n, f, err := d.Create("absent", unix.O_WRONLY, 0o644, Owner{})
	must(t, err)
	f.Close()
	n.Release()
	c, err := d.Lookup("absent")
	must(t, err)
	c.Release()
}

// TestLowerNameSetsAreBounded: the names kept for lower directories stay
// under the limit (maxCachedNames; 100 here) however many directories are
// looked into, and lookups stay right when the cache was emptied.
func TestLowerNameSetsAreBounded(t *testing.T) {
	var files []string
	const perDir, limit = 30, 100
	dirs := 3 * limit / perDir
	for d := range dirs {
		for f := range perDir {
			files = append(files, fmt.Sprintf("d%d/f%d!", d, f)) // whiteouts: hide the name
		}
	}
	tu := newUnion(t, nil, files)
	tu.lowerNames.limit = limit
	for d := range dirs {
		n, err := tu.walk(t, fmt.Sprintf("/d%d/absent", d))
		if err == nil {
			n.Release()
		}
		wantErrno(t, err, unix.ENOENT)
		tu.lowerNames.mu.Lock()
		kept := tu.lowerNames.names
		tu.lowerNames.mu.Unlock()
		if kept > limit {
			t.Fatalf("after %d directories the cache keeps %d names", d+1, kept)
		}
		if n, err := tu.walk(t, fmt.Sprintf("/d%d/f7", d)); err == nil {
			n.Release()
			t.Fatalf("d%d/f7, a whiteout, was found", d)
		}
	}
}
