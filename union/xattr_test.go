package union

import (
	"testing"
)

// TestXattrSeenThroughOtherNode: two Nodes of one lower file; an xattr set
// through one (which copies the file up) is seen by the other at once,
// before anything else (Attr, Open) made it look at the upper layer.
func TestXattrSeenThroughOtherNode(t *testing.T) {
	tu := newUnion(t, nil, []string{"f=data"})
	a := tu.mustWalk(t, "/f")
	b := tu.mustWalk(t, "/f")
	must(t, b.SetXattr("user.k", []byte("v"), 0))

	v, err := a.GetXattr("user.k")
	if err != nil || string(v) != "v" {
		t.Errorf("GetXattr through the other Node = %q, %v; want \"v\"", v, err)
	}
	names, err := a.ListXattr()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range names {
		found = found || n == "user.k"
	}
	if !found {
		t.Errorf("ListXattr through the other Node = %q; want user.k in it", names)
	}
	// And the other way: a removal through a is seen by b.
	must(t, a.RemoveXattr("user.k"))
	if _, err := b.GetXattr("user.k"); err == nil {
		t.Errorf("GetXattr after a removal through the other Node still finds user.k")
	}
}
