package p9srv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/union9p/union9p/test/p9wire"
	"golang.org/x/sys/unix"
)

// TestTwoConnectionsSeeOneObject: two clients on two sockets each hold a
// fid on the lower file dir/a and change it at the same time: one sets an
// xattr (a copy-up) and renames it, the other opens it for writing (a
// copy-up with the data) and writes, and both read it meanwhile. Then
// every fid, on either connection, shows the same object: the same qid
// path, data and xattrs, under the new name; and a change made afterwards
// through the other connection's fid lands on the renamed file.
func TestTwoConnectionsSeeOneObject(t *testing.T) {
	for round := range 10 {
		t.Run(fmt.Sprint(round), func(t *testing.T) { twoConnectionsRound(t) })
	}
}

func twoConnectionsRound(t *testing.T) {
	ts := startServer(t, serverOptions{})
	a, b := ts.dial(t, 0), ts.dial(t, 0)
	const fileA, dirA, fileB, readB = 1, 2, 1, 3
	for _, c := range []*p9wire.Client{a, b} {
		if _, err := c.Walk(0, fileA, "dir", "a"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Walk(0, dirA, "dir"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Walk(fileB, readB); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Lopen(readB, p9wire.ORdonly); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	wg.Add(3)
	go func() { // connection a: copy-up by xattr, then rename
		defer wg.Done()
		if err := a.SetXattr(fileA, 10, "user.k", []byte("v"), 0); err != nil {
			errs <- fmt.Errorf("a setxattr: %w", err)
			return
		}
		if err := a.Renameat(dirA, "a", dirA, "c"); err != nil {
			errs <- fmt.Errorf("a rename: %w", err)
		}
	}()
	go func() { // connection b: copy-up for write, write
		defer wg.Done()
		if _, err := b.Walk(fileB, 11); err != nil {
			errs <- err
			return
		}
		defer b.Clunk(11)
		if _, _, err := b.Lopen(11, p9wire.ORdwr); err != nil {
			errs <- fmt.Errorf("b open for write: %w", err)
			return
		}
		if _, err := b.Write(11, 1, []byte("B")); err != nil {
			errs <- fmt.Errorf("b write: %w", err)
		}
	}()
	go func() { // connection b: reads meanwhile, through a fid opened before
		defer wg.Done()
		for range 50 {
			p, err := b.Read(readB, 0, 16)
			if err != nil {
				errs <- fmt.Errorf("b read: %w", err)
				return
			}
			if s := string(p); s != "a" && s != "aB" {
				errs <- fmt.Errorf("b read %q mid-change", s)
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Every fid shows one object.
	type view struct {
		path uint64
		data string
		k    string
	}
	look := func(c *p9wire.Client, fid uint32, tmp uint32) view {
		t.Helper()
		at, err := c.Getattr(fid, p9wire.GetattrAll)
		must(t, err)
		v := view{path: at.QID.Path}
		if _, err := c.Walk(fid, tmp); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Lopen(tmp, p9wire.ORdonly); err != nil {
			t.Fatal(err)
		}
		p, err := c.Read(tmp, 0, 16)
		must(t, err)
		c.Clunk(tmp)
		v.data = string(p)
		k, err := c.GetXattr(fid, tmp, "user.k")
		must(t, err)
		v.k = string(k)
		return v
	}
	fresh := uint32(20)
	if _, err := b.Walk(0, fresh, "dir", "c"); err != nil {
		t.Fatalf("the renamed name, looked up afresh: %v", err)
	}
	if _, err := b.Walk(0, 21, "dir", "a"); err == nil {
		t.Fatal("the old name still exists after the rename")
	}
	want := view{data: "aB", k: "v"}
	for i, v := range []view{look(a, fileA, 12), look(b, fileB, 12), look(b, fresh, 13)} {
		if want.path == 0 {
			want.path = v.path
		}
		if v != want {
			t.Errorf("fid %d shows %+v, want %+v", i, v, want)
		}
	}

	// The fid of the other connection follows the rename: a change made
	// through it lands on the renamed file in the upper layer.
	if err := b.SetXattr(fileB, 14, "user.after", []byte("b"), 0); err != nil {
		t.Fatal(err)
	}
	got, err := a.GetXattr(fileA, 15, "user.after")
	if err != nil || !bytes.Equal(got, []byte("b")) {
		t.Errorf("a fid reads user.after = %q, %v; want \"b\"", got, err)
	}
	host := filepath.Join(ts.upper, "dir", "c")
	if v, err := lgetxattr(host, "user.after"); err != nil || v != "b" {
		t.Errorf("upper dir/c has user.after = %q, %v", v, err)
	}
	if data, err := os.ReadFile(host); err != nil || string(data) != "aB" {
		t.Errorf("upper dir/c holds %q, %v", data, err)
	}
	// The old name is a whiteout now (the lower still has dir/a).
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(ts.upper, "dir", "a"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("upper dir/a after the rename is not a whiteout: mode %o rdev %d, %v", st.Mode, st.Rdev, err)
	}
}

func lgetxattr(path, name string) (string, error) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(path, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
