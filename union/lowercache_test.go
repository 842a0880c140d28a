package union

import (
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
