package union

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Namespace changes check and change under one lock: two exclusive creates
// of one name never both succeed, even over a whiteout (an O_EXCL lock
// file depends on it), and an rmdir never deletes what a concurrent create
// put inside.
func TestConcurrentNamespaceChanges(t *testing.T) {
	tu := newUnion(t, nil, []string{"x=lower", "d/"})
	root := tu.mustWalk(t, "/")
	must(t, root.Unlink("x", false)) // x is now a whiteout over a lower file
	for round := 0; round < 100; round++ {
		name := "x"
		if round > 0 {
			name = fmt.Sprintf("x%d", round)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if i == 0 {
					var n *Node
					var f *File
					if n, f, err = root.Create(name, unix.O_RDWR, 0o644, Owner{}); err == nil {
						f.Close()
						n.Release()
					}
				} else {
					var n *Node
					if n, err = root.Mkdir(name, 0o755, Owner{}); err == nil {
						n.Release()
					}
				}
				switch {
				case err == nil:
					mu.Lock()
					won++
					mu.Unlock()
				case !errors.Is(err, unix.EEXIST):
					t.Errorf("round %d: %v", round, err)
				}
			}()
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("round %d: %d of two exclusive creates of %s succeeded", round, won, name)
		}
	}

	d := tu.mustWalk(t, "d")
	for round := 0; round < 100; round++ {
		var wg sync.WaitGroup
		var rmErr, mkErr error
		wg.Add(2)
		go func() { defer wg.Done(); rmErr = root.Unlink("d", true) }()
		go func() {
			defer wg.Done()
			var n *Node
			var f *File
			if n, f, mkErr = d.Create("inside", unix.O_RDWR, 0o644, Owner{}); mkErr == nil {
				f.Close()
				n.Release()
			}
		}()
		wg.Wait()
		if rmErr == nil && mkErr == nil {
			t.Fatalf("round %d: rmdir and a create inside both succeeded: the file is lost", round)
		}
		// Put d back, empty, for the next round.
		if rmErr != nil {
			must(t, d.Unlink("inside", false))
		} else {
			nd, err := root.Mkdir("d", 0o755, Owner{})
			must(t, err)
			d = nd
			t.Cleanup(nd.Release)
		}
	}
}
