package p9srv

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
)

// TestLibraryClient drives the server through github.com/hugelgupf/p9's
// client over a unix socket: a second, independent implementation of the
// protocol checking our codec and dispatch (its client negotiates
// "9P2000.L.Google.N"; the server answers plain "9P2000.L").
func TestLibraryClient(t *testing.T) {
	ts := startServer(t, serverOptions{})
	conn, err := net.Dial("unix", ts.sock)
	must(t, err)
	client, err := p9.NewClient(conn, p9.WithMessageSize(256<<10))
	must(t, err)
	defer client.Close()
	root, err := client.Attach("root")
	must(t, err)
	defer root.Close()

	// Walk + getattr + read of a lower file.
	_, f, err := root.Walk([]string{"dir", "a"})
	must(t, err)
	_, _, a, err := f.GetAttr(p9.AttrMaskAll)
	must(t, err)
	if a.Size != 1 || !a.Mode.IsRegular() {
		t.Errorf("getattr dir/a: %+v", a)
	}
	_, _, err = f.Open(p9.ReadOnly)
	must(t, err)
	buf := make([]byte, 16)
	n, err := f.ReadAt(buf, 0)
	if err != nil && n == 0 {
		t.Fatal(err)
	}
	if string(buf[:n]) != "a" {
		t.Errorf("read dir/a %q", buf[:n])
	}
	must(t, f.Close())

	// Create, write, read back; the data lands in the upper.
	_, d, err := root.Walk(nil)
	must(t, err)
	nf, _, _, err := d.Create("new", p9.ReadWrite, 0o640, p9.NoUID, p9.NoGID)
	must(t, err)
	payload := bytes.Repeat([]byte("library "), 5000)
	if n, err := nf.WriteAt(payload, 0); err != nil || n != len(payload) {
		t.Fatalf("write: %d %v", n, err)
	}
	back := make([]byte, len(payload))
	if n, err := nf.ReadAt(back, 0); err != nil || n != len(payload) || !bytes.Equal(back, payload) {
		t.Fatalf("read back %d bytes, err %v", n, err)
	}
	must(t, nf.Close())
	if got, err := os.ReadFile(filepath.Join(ts.upper, "new")); err != nil || !bytes.Equal(got, payload) {
		t.Errorf("upper file: %d bytes, %v", len(got), err)
	}

	// Mkdir, rename, readdir of the merged root, unlink.
	_, err = root.Mkdir("sub2", 0o755, p9.NoUID, p9.NoGID)
	must(t, err)
	must(t, root.RenameAt("new", root, "renamed"))
	_, dd, err := root.Walk(nil)
	must(t, err)
	_, _, err = dd.Open(p9.ReadOnly)
	must(t, err)
	var names []string
	var off uint64
	for {
		ents, err := dd.Readdir(off, 4096)
		must(t, err)
		if len(ents) == 0 {
			break
		}
		for _, e := range ents {
			names = append(names, e.Name)
		}
		off = ents[len(ents)-1].Offset
	}
	must(t, dd.Close())
	sort.Strings(names)
	want := []string{".", "..", "dir", "file", "link", "renamed", "sub2"}
	if len(names) != len(want) {
		t.Errorf("readdir %v, want %v", names, want)
	} else {
		for i := range want {
			if names[i] != want[i] {
				t.Errorf("readdir %v, want %v", names, want)
				break
			}
		}
	}
	must(t, root.UnlinkAt("renamed", 0))
	if _, _, err := root.Walk([]string{"renamed"}); !errors.Is(err, linux.ENOENT) {
		t.Errorf("walk to unlinked name: %v, want ENOENT", err)
	}

	// Symlink, readlink and statfs. (The library client sends xattrs only
	// in its own dialect; Linux's way is tested with test/p9wire.)
	_, err = root.Symlink("file", "sl", p9.NoUID, p9.NoGID)
	must(t, err)
	_, sl, err := root.Walk([]string{"sl"})
	must(t, err)
	if target, err := sl.Readlink(); err != nil || target != "file" {
		t.Errorf("readlink %q %v", target, err)
	}
	must(t, sl.Close())
	if _, err := root.StatFS(); err != nil {
		t.Errorf("statfs: %v", err)
	}
}
