package tenant

import (
	"context"
	"fmt"
	"math/rand"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// Connections come and go on two tenants while one of them is reset over
// and over, its quota changed and the list read. Every union a connection
// got stays usable until it releases it (a union closed under a
// connection would answer EBADF), a connection never sees a tenant
// half-reset, and nothing deadlocks.
func TestConnectionsDuringResets(t *testing.T) {
	f := newFixture(t)
	r := f.open(t)
	must(t, r.Add("a"))
	must(t, r.Add("b"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := []string{"a", "b"}[w%2]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				h, err := r.Acquire(ctx, name)
				if err != nil {
					t.Errorf("acquire %s: %v", name, err)
					return
				}
				root, err := h.Union().Root()
				if err == nil {
					var n *union.Node
					var file *union.File
					n, file, err = root.Create(fmt.Sprintf("w%d-%d", w, i), unix.O_RDWR, 0o644, union.Owner{})
					if err == nil {
						_, err = file.WriteAt([]byte("data"), 0)
						file.Close()
						n.Release()
					}
					if err == nil {
						var g *union.Node
						if g, err = root.Lookup("greeting"); err == nil {
							g.Release()
						}
					}
					root.Release()
				}
				h.Release()
				if err != nil {
					t.Errorf("tenant %s, connection %d: %v", name, w, err)
					return
				}
			}
		}()
	}
	var runErr error
	for i := range 10 {
		// The fake server closes nothing: the connections above are short
		// and release on their own, which Reset waits for.
		if runErr = r.Reset(ctx, "a", func(string) {}); runErr != nil {
			runErr = fmt.Errorf("reset %d: %w", i, runErr)
			break
		}
		if runErr = r.SetQuota("a", &Quota{Inodes: int64(1000 + i)}); runErr != nil {
			break
		}
		if in := info(t, r, "a"); in.Quota.Inodes != int64(1000+i) {
			runErr = fmt.Errorf("quota not applied: %+v", in)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Stop the connections before any verdict: the registry must not be
	// closed under them.
	close(stop)
	wg.Wait()
	must(t, runErr)
	if in := info(t, r, "a"); in.Connections != 0 || in.Busy {
		t.Fatalf("after the run: %+v", in)
	}
}

// What the union itself writes (files, directories, whiteouts, opaque
// directories, copy-ups with their xattrs, hard links, symbolic links) is
// counted at the next start exactly as du counts it.
func TestRecountAfterUnionWorkload(t *testing.T) {
	f := newFixture(t)
	r := f.open(t)
	must(t, r.Add("a"))
	h := acquire(t, r, "a")
	u := h.Union()
	rng := rand.New(rand.NewSource(3))
	root, err := u.Root()
	must(t, err)
	var files []*union.Node
	for i := range 200 {
		name := fmt.Sprintf("n%d", i)
		switch rng.Intn(6) {
		case 0:
			d, err := root.Mkdir(name, 0o755, union.Owner{})
			must(t, err)
			d.Release()
		case 1, 2:
			n, file, err := root.Create(name, unix.O_RDWR, 0o644, union.Owner{})
			must(t, err)
			_, err = file.WriteAt(make([]byte, rng.Intn(50000)), int64(rng.Intn(1<<20)))
			must(t, err)
			file.Close()
			files = append(files, n)
		case 3:
			if len(files) > 0 {
				n, err := root.Link(files[rng.Intn(len(files))], name)
				must(t, err)
				n.Release()
			}
		case 4:
			n, err := root.Symlink(name, "/some/where/else", union.Owner{})
			must(t, err)
			n.Release()
		default:
			n, err := root.Symlink(name+"x", "t", union.Owner{})
			must(t, err)
			n.Release()
		}
	}
	must(t, root.Unlink("greeting", false)) // a whiteout
	etc, err := root.Lookup("etc")
	must(t, err)
	conf, err := etc.Lookup("conf")
	must(t, err)
	file, err := conf.Open(unix.O_RDWR) // a copy-up of etc and etc/conf
	must(t, err)
	_, err = file.WriteAt([]byte("changed"), 0)
	must(t, err)
	file.Close()
	conf.Release()
	etc.Release()
	for _, n := range files {
		n.Release()
	}
	root.Release()
	h.Release()
	r.Close()

	r = f.open(t)
	want := duMeasurement(t, filepath.Join(f.dir, "a", "upper")).Usage
	if got := info(t, r, "a").Usage; got != want {
		t.Fatalf("recount %+v, du %+v", got, want)
	}
	if want.Inodes < 150 {
		t.Fatalf("workload too small to mean anything: %+v", want)
	}
}
