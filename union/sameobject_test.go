package union

import (
	"fmt"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTwoNodesSeeOneObject: two holders of one lower file (as two 9P
// connections each with a fid on it) change it at once (a copy-up through
// an xattr, a metadata-only copy-up through a chmod, a write that copies
// the data in, a rename of the name); afterwards each sees the same
// object: the same id, attributes, xattrs and data, the rename included,
// without being told anything: they hold the one Node of the object.
func TestTwoNodesSeeOneObject(t *testing.T) {
	for _, metacopy := range []bool{false, true} {
		t.Run(fmt.Sprintf("metacopy=%v", metacopy), func(t *testing.T) {
			for round := range 20 {
				tu := newUnion(t, nil, []string{"d/f=lower data"})
				if metacopy {
					withMetacopy(t, tu)
				} else {
					withRedirects(t, tu)
				}
				a, b := tu.mustWalk(t, "/d/f"), tu.mustWalk(t, "/d/f")
				d := tu.mustWalk(t, "/d")
				var wg sync.WaitGroup
				errs := make(chan error, 4)
				wg.Add(3)
				go func() {
					defer wg.Done()
					errs <- a.SetXattr("user.k", []byte("v"), 0)
				}()
				go func() {
					defer wg.Done()
					errs <- b.SetAttr(SetAttr{SetMode: true, Mode: 0o600})
				}()
				go func() {
					defer wg.Done()
					f, err := b.Open(unix.O_WRONLY)
					if err == nil {
						_, err = f.WriteAt([]byte("UPPER"), 0)
						f.Close()
					}
					errs <- err
				}()
				wg.Wait()
				must(t, d.Rename("f", d, "g"))
				if a != b {
					t.Fatalf("round %d: two lookups of one object gave two Nodes", round)
				}
				if p := a.Path(); p != "/d/g" {
					t.Errorf("round %d: the renamed Node says it is %s", round, p)
				}
				close(errs)
				for err := range errs {
					if err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
				}
				for i, n := range []*Node{a, b} {
					at, err := n.Attr()
					must(t, err)
					if at.Mode&0o7777 != 0o600 || at.Size != uint64(len("lower data")) {
						t.Errorf("round %d: node %d: mode %o size %d", round, i, at.Mode&0o7777, at.Size)
					}
					if v, err := n.GetXattr("user.k"); err != nil || string(v) != "v" {
						t.Errorf("round %d: node %d: user.k = %q, %v", round, i, v, err)
					}
					if got, _ := readAllNode(n); got != "UPPER data" {
						t.Errorf("round %d: node %d reads %q", round, i, got)
					}
				}
				aa, _ := a.Attr()
				ba, _ := b.Attr()
				if aa.ID != ba.ID {
					t.Errorf("round %d: ids %x and %x", round, aa.ID, ba.ID)
				}
				fresh := tu.mustWalk(t, "/d/g")
				fa, _ := fresh.Attr()
				if fa.ID != aa.ID {
					t.Errorf("round %d: a fresh lookup has id %x, the held ones %x", round, fa.ID, aa.ID)
				}
			}
		})
	}
}
