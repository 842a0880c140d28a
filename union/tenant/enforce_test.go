package tenant

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// The union charging a Ledger (union.Options.Quota, charge.go): these tests
// drive a union directly; cmd/union9p's serve tests do it over sockets.

// quotaUnion opens a union over a small lower tree with an upper whose
// usage a Ledger with quota q keeps.
func quotaUnion(t *testing.T, q Quota) (u *union.Union, l *Ledger, upper, work string) {
	t.Helper()
	base := t.TempDir()
	lower := filepath.Join(base, "lower")
	upper = filepath.Join(base, "upper")
	work = filepath.Join(base, "work")
	for _, d := range []string{lower, upper, work, filepath.Join(lower, "ld"), filepath.Join(lower, "ld", "deep")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 6; i++ {
		p := filepath.Join(lower, "ld", fmt.Sprintf("lf%d", i))
		if err := os.WriteFile(p, make([]byte, 1000*(i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "big"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lower, "ld", "deep", "f"), []byte("deep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("ld/lf0", filepath.Join(lower, "ll")); err != nil {
		t.Fatal(err)
	}
	l = NewLedger(measurePath(t, upper).Usage, q)
	u, err := union.Open(union.Options{Lowers: []string{lower}, Upper: upper, Workdir: work, Quota: charger{l}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u, l, upper, work
}

// walkTo looks up the slash-separated path from the root ("" is the root).
func walkTo(u *union.Union, path string) (*union.Node, error) {
	n, err := u.Root()
	if err != nil {
		return nil, err
	}
	if path == "" {
		return n, nil
	}
	for _, name := range strings.Split(path, "/") {
		c, err := n.Lookup(name)
		n.Release()
		if err != nil {
			return nil, err
		}
		n = c
	}
	return n, nil
}

// wantLedgerIsDu checks the ledger against a recount and du of the upper.
func wantLedgerIsDu(t *testing.T, what string, l *Ledger, upper string) {
	t.Helper()
	if got, want := l.Used(), duMeasurement(t, upper).Usage; got != want {
		t.Fatalf("%s: ledger %+v, du %+v (Measure %+v)", what, got, want, measurePath(t, upper).Usage)
	}
}

// workEmpty checks that nothing was left half-made in the work directory.
func workEmpty(t *testing.T, what, work string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(work, "work"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("%s: work directory holds %v", what, ents)
	}
}

func TestQuotaLedgerFollowsRandomWorkload(t *testing.T) {
	u, l, upper, work := quotaUnion(t, Quota{})
	rng := rand.New(rand.NewSource(10))
	dirs := []string{"", "ld", "ld/deep", "d1", "d1/d2"}
	names := []string{"a", "b", "c", "lf0", "lf1", "lf2", "lf3", "deep", "f", "d2"}
	o := union.Owner{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	counts := map[string]int{}
	for i := 0; i < 3000; i++ {
		dir := dirs[rng.Intn(len(dirs))]
		name := names[rng.Intn(len(names))]
		path := strings.TrimPrefix(dir+"/"+name, "/")
		d, err := walkTo(u, dir)
		if err != nil {
			continue
		}
		op := rng.Intn(13)
		switch op {
		case 0: // create and write
			c, f, err := d.Create(name, unix.O_RDWR, 0o644, o)
			if err == nil {
				f.WriteAt(make([]byte, rng.Intn(20000)), int64(rng.Intn(5000)))
				f.Close()
				c.Release()
			}
		case 1: // write into an existing file (copy-up for a lower one)
			if c, err := walkTo(u, path); err == nil {
				if f, err := c.Open(unix.O_WRONLY); err == nil {
					f.WriteAt(make([]byte, rng.Intn(9000)), int64(rng.Intn(9000)))
					f.Close()
				}
				c.Release()
			}
		case 2: // truncate
			if c, err := walkTo(u, path); err == nil {
				c.SetAttr(union.SetAttr{SetSize: true, Size: uint64(rng.Intn(12000))})
				c.Release()
			}
		case 3:
			if c, err := d.Mkdir(name, 0o755, o); err == nil {
				c.Release()
			}
		case 4:
			if c, err := d.Symlink(name, strings.Repeat("t", 1+rng.Intn(300)), o); err == nil {
				c.Release()
			}
		case 5:
			if c, err := d.Mknod(name, unix.S_IFIFO|0o644, 0, o); err == nil {
				c.Release()
			}
		case 6: // hard link of something in the root
			if tgt, err := walkTo(u, names[rng.Intn(len(names))]); err == nil {
				if c, err := d.Link(tgt, name); err == nil {
					c.Release()
				}
				tgt.Release()
			}
		case 7:
			d.Unlink(name, false)
		case 8:
			d.Unlink(name, true)
		case 9: // rename, possibly over something
			to, err := walkTo(u, dirs[rng.Intn(len(dirs))])
			if err == nil {
				d.Rename(name, to, names[rng.Intn(len(names))])
				to.Release()
			}
		case 10: // open with O_TRUNC
			if c, err := walkTo(u, path); err == nil {
				if f, err := c.Open(unix.O_WRONLY | unix.O_TRUNC); err == nil {
					f.Close()
				}
				c.Release()
			}
		case 11: // chmod: a metadata copy-up
			if c, err := walkTo(u, path); err == nil {
				c.SetAttr(union.SetAttr{SetMode: true, Mode: 0o600})
				c.Release()
			}
		case 12: // append
			if c, err := walkTo(u, path); err == nil {
				if f, err := c.Open(unix.O_WRONLY | unix.O_APPEND); err == nil {
					f.WriteAt(make([]byte, rng.Intn(3000)), 0)
					f.Close()
				}
				c.Release()
			}
		}
		counts[fmt.Sprint(op)]++
		d.Release()
		if i%250 == 0 {
			wantLedgerIsDu(t, fmt.Sprintf("after op %d (%d)", i, op), l, upper)
		}
	}
	wantLedgerIsDu(t, "at the end", l, upper)
	workEmpty(t, "at the end", work)
	if l.Used().Inodes < 10 {
		t.Fatalf("the workload made almost nothing (%+v): the test checks too little", l.Used())
	}
}

// wantEDQUOT checks that err is EDQUOT.
func wantEDQUOT(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, unix.EDQUOT) {
		t.Fatalf("%s: %v, want EDQUOT", what, err)
	}
}

func TestQuotaRefusesPastLimitLeavingNothing(t *testing.T) {
	u, l, upper, work := quotaUnion(t, Quota{})
	o := union.Owner{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	root, err := walkTo(u, "")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Release()
	used := l.Used()

	// Bytes: 100 KiB left.
	l.SetQuota(Quota{Bytes: used.Bytes + 100<<10})
	c, f, err := root.Create("f", unix.O_RDWR, 0o644, o)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.WriteAt(make([]byte, 60<<10), 0); err != nil || n != 60<<10 {
		t.Fatalf("write within quota: %d %v", n, err)
	}
	_, err = f.WriteAt(make([]byte, 60<<10), 60<<10)
	wantEDQUOT(t, "write past the quota", err)
	if fi, _ := os.Stat(filepath.Join(upper, "f")); fi.Size() != 60<<10 {
		t.Fatalf("refused write changed the file: size %d", fi.Size())
	}
	// Overwriting inside the file needs nothing.
	if _, err := f.WriteAt(make([]byte, 60<<10), 0); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	wantEDQUOT(t, "truncate up", c.SetAttr(union.SetAttr{SetSize: true, Size: 1 << 20}))
	f.Close()
	c.Release()

	// The 1 MiB lower file cannot be copied up for writing.
	big, err := walkTo(u, "big")
	if err != nil {
		t.Fatal(err)
	}
	_, err = big.Open(unix.O_WRONLY)
	wantEDQUOT(t, "copy-up of a file larger than what is left", err)
	wantEDQUOT(t, "setxattr (copy-up)", big.SetXattr("user.k", []byte("v"), 0))
	big.Release()
	if _, err := os.Lstat(filepath.Join(upper, "big")); !os.IsNotExist(err) {
		t.Fatalf("refused copy-up left %v in the upper", err)
	}
	workEmpty(t, "after the refused copy-up", work)
	// Truncating frees: then it fits, as an empty copy-up (O_TRUNC).
	if big, err = walkTo(u, "big"); err != nil {
		t.Fatal(err)
	}
	if f, err := big.Open(unix.O_WRONLY | unix.O_TRUNC); err != nil {
		t.Fatalf("copy-up for O_TRUNC copies no data: %v", err)
	} else {
		f.Close()
	}
	big.Release()
	wantLedgerIsDu(t, "bytes", l, upper)

	// Inodes: exactly two left.
	used = l.Used()
	l.SetQuota(Quota{Inodes: used.Inodes + 2})
	if c, err := root.Mkdir("d", 0o755, o); err != nil {
		t.Fatal(err)
	} else {
		c.Release()
	}
	if c, err := root.Symlink("s", "target", o); err != nil {
		t.Fatal(err)
	} else {
		c.Release()
	}
	_, _, err = root.Create("g", unix.O_RDWR, 0o644, o)
	wantEDQUOT(t, "create", err)
	_, err = root.Mkdir("e", 0o755, o)
	wantEDQUOT(t, "mkdir", err)
	_, err = root.Symlink("t", "x", o)
	wantEDQUOT(t, "symlink", err)
	_, err = root.Mknod("p", unix.S_IFIFO|0o644, 0, o)
	wantEDQUOT(t, "mknod", err)
	ld, err := walkTo(u, "ld/lf1")
	if err != nil {
		t.Fatal(err)
	}
	wantEDQUOT(t, "chmod (copy-up)", ld.SetAttr(union.SetAttr{SetMode: true, Mode: 0o600}))
	ld.Release()
	// Removing a lower file needs a whiteout: an inode.
	wantEDQUOT(t, "unlink of a lower file", root.Unlink("ll", false))
	// A hard link adds no inode.
	fn, err := walkTo(u, "f")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := root.Link(fn, "f2"); err != nil {
		t.Fatalf("link at the inode quota: %v", err)
	} else {
		c.Release()
	}
	fn.Release()
	for _, name := range []string{"g", "e", "t", "p"} {
		if _, err := os.Lstat(filepath.Join(upper, name)); !os.IsNotExist(err) {
			t.Fatalf("refused create of %s left %v", name, err)
		}
	}
	workEmpty(t, "after the refused creates", work)
	// Freeing an inode makes room again.
	if err := root.Unlink("s", false); err != nil {
		t.Fatal(err)
	}
	if c, err := root.Mknod("p", unix.S_IFIFO|0o644, 0, o); err != nil {
		t.Fatalf("mknod after a free: %v", err)
	} else {
		c.Release()
	}
	wantLedgerIsDu(t, "inodes", l, upper)
}

func TestQuotaLedgerUnderConcurrentChanges(t *testing.T) {
	u, l, upper, work := quotaUnion(t, Quota{})
	l.SetQuota(Quota{Bytes: l.Used().Bytes + 400<<10, Inodes: l.Used().Inodes + 40})
	o := union.Owner{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	root, err := walkTo(u, "")
	if err != nil {
		t.Fatal(err)
	}
	// Shared files that every worker grows, truncates and overwrites.
	for _, name := range []string{"s0", "s1"} {
		c, f, err := root.Create(name, unix.O_RDWR, 0o644, o)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		c.Release()
	}
	root.Release()
	done := make(chan error)
	const workers = 4
	for w := 0; w < workers; w++ {
		go func(w int) {
			rng := rand.New(rand.NewSource(int64(w)))
			for i := 0; i < 400; i++ {
				root, err := walkTo(u, "")
				if err != nil {
					done <- err
					return
				}
				name := fmt.Sprintf("w%d-%d", w, rng.Intn(6))
				shared := fmt.Sprintf("s%d", rng.Intn(2))
				switch rng.Intn(8) {
				case 0:
					if c, f, err := root.Create(name, unix.O_RDWR, 0o644, o); err == nil {
						f.WriteAt(make([]byte, rng.Intn(30000)), 0)
						f.Close()
						c.Release()
					}
				case 1:
					root.Unlink(name, false)
				case 2, 3:
					if c, err := root.Lookup(shared); err == nil {
						if f, err := c.Open(unix.O_RDWR); err == nil {
							f.WriteAt(make([]byte, rng.Intn(20000)), int64(rng.Intn(60000)))
							f.Close()
						}
						c.Release()
					}
				case 4:
					if c, err := root.Lookup(shared); err == nil {
						c.SetAttr(union.SetAttr{SetSize: true, Size: uint64(rng.Intn(40000))})
						c.Release()
					}
				case 5:
					if c, err := root.Lookup("ld"); err == nil {
						if f, err := c.Lookup(fmt.Sprintf("lf%d", rng.Intn(6))); err == nil {
							f.SetAttr(union.SetAttr{SetMode: true, Mode: 0o600})
							f.Release()
						}
						c.Release()
					}
				case 6: // remove a file others write to
					root.Unlink(shared, false)
				case 7:
					if c, f, err := root.Create(shared, unix.O_RDWR, 0o644, o); err == nil {
						f.Close()
						c.Release()
					}
				}
				root.Release()
				if used, q := l.Used(), l.Quota(); used.Bytes > q.Bytes+64<<10 || used.Inodes > q.Inodes {
					done <- fmt.Errorf("usage %+v past the quota %+v", used, q)
					return
				}
			}
			done <- nil
		}(w)
	}
	for w := 0; w < workers; w++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	wantLedgerIsDu(t, "after concurrent changes", l, upper)
	workEmpty(t, "after concurrent changes", work)
}
