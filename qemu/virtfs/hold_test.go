package virtfs

import (
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// holdTestMax is the held list's size in these tests: far fewer than
// the objects they look up.
const holdTestMax = 16

// holdFS is a virtio-fs server over a union whose lower has a/b/ with
// files f000.. ("lower 000"..) and a/h1, a/h2, two names of one file,
// talked to through go-fuse's raw interface as the guest's requests
// would be (after an INIT through Handle).
type holdFS struct {
	t     testing.TB
	p     *Protocol
	u     *union.Union
	upper string
}

func newHoldFS(t testing.TB, files int) *holdFS { return newHoldFSMax(t, files, holdTestMax) }

// newHoldFSMax is newHoldFS keeping max idle nodes held.
func newHoldFSMax(t testing.TB, files, max int) *holdFS {
	t.Helper()
	base := t.TempDir()
	lower, upper, work := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work")
	for _, d := range []string{filepath.Join(lower, "a", "b"), upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < files; i++ {
		if err := os.WriteFile(filepath.Join(lower, "a", "b", fmt.Sprintf("f%03d", i)), []byte(fmt.Sprintf("lower %03d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "a", "h1"), []byte("linked"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(lower, "a", "h1"), filepath.Join(lower, "a", "h2")); err != nil {
		t.Fatal(err)
	}
	// Redirects on: renaming a/ (a lower directory) writes one.
	u, err := union.Open(union.Options{Lowers: []string{lower}, Upper: upper, Workdir: work, RedirectDir: union.RedirectOn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	p, err := newProtocolHeld(u, log.New(io.Discard, "", 0), max)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 4096)
	if e := outHeader(t, out, p.Handle(1, request(opInit, 1, 0, initArgs()), [][]byte{out}), 1); e != 0 {
		t.Fatalf("INIT: error %d", e)
	}
	return &holdFS{t: t, p: p, u: u, upper: upper}
}

func hdr(node uint64) fuse.InHeader { return fuse.InHeader{NodeId: node} }

// lookup returns the node id and stable id of name in dir.
func (h *holdFS) lookup(dir uint64, name string) (node, ino uint64, st fuse.Status) {
	var out fuse.EntryOut
	in := hdr(dir)
	st = h.p.raw.Lookup(nil, &in, name, &out)
	return out.NodeId, out.Ino, st
}

// lookupFiles looks up a, a/b and the first n files of a/b.
func (h *holdFS) lookupFiles(n int) (a, b uint64, files []uint64) {
	a, _ = h.mustLookup(1, "a")
	b, _ = h.mustLookup(a, "b")
	files = make([]uint64, n)
	for i := range files {
		files[i], _ = h.mustLookup(b, fmt.Sprintf("f%03d", i))
	}
	return a, b, files
}

func (h *holdFS) mustLookup(dir uint64, name string) (node, ino uint64) {
	h.t.Helper()
	node, ino, st := h.lookup(dir, name)
	if !st.Ok() {
		h.t.Fatalf("LOOKUP %s in %d: %v", name, dir, st)
	}
	return node, ino
}

func (h *holdFS) getattr(node uint64) (fuse.Attr, fuse.Status) {
	var out fuse.AttrOut
	st := h.p.raw.GetAttr(nil, &fuse.GetAttrIn{InHeader: hdr(node)}, &out)
	return out.Attr, st
}

func (h *holdFS) open(node uint64, flags uint32) (uint64, fuse.Status) {
	var out fuse.OpenOut
	st := h.p.raw.Open(nil, &fuse.OpenIn{InHeader: hdr(node), Flags: flags}, &out)
	return out.Fh, st
}

func (h *holdFS) read(node, fh uint64) (string, fuse.Status) {
	buf := make([]byte, 256)
	r, st := h.p.raw.Read(nil, &fuse.ReadIn{InHeader: hdr(node), Fh: fh, Size: uint32(len(buf))}, buf)
	if !st.Ok() {
		return "", st
	}
	b, st := r.Bytes(buf)
	r.Done()
	return string(b), st
}

func (h *holdFS) release(node, fh uint64) {
	h.p.raw.Release(nil, &fuse.ReleaseIn{InHeader: hdr(node), Fh: fh})
}

// readAll opens node read-only, reads it and closes it.
func (h *holdFS) readAll(node uint64) (string, fuse.Status) {
	fh, st := h.open(node, unix.O_RDONLY)
	if !st.Ok() {
		return "", st
	}
	defer h.release(node, fh)
	return h.read(node, fh)
}

func (h *holdFS) rename(dir uint64, name string, newDir uint64, newName string) {
	h.t.Helper()
	if st := h.p.raw.Rename(nil, &fuse.RenameIn{InHeader: hdr(dir), Newdir: newDir}, name, newName); !st.Ok() {
		h.t.Fatalf("RENAME %s to %s: %v", name, newName, st)
	}
}

func (h *holdFS) unlink(dir uint64, name string) {
	h.t.Helper()
	in := hdr(dir)
	if st := h.p.raw.Unlink(nil, &in, name); !st.Ok() {
		h.t.Fatalf("UNLINK %s: %v", name, st)
	}
}

// bounded checks that the server holds no more than the held list's
// size of idle objects (plus the root, a few ancestors and extra,
// objects that must stay held) and no more descriptors than base plus
// what those hold.
func (h *holdFS) bounded(what string, base, extra int) {
	h.t.Helper()
	if n := h.p.t.h.Len(); n > holdTestMax {
		h.t.Fatalf("%s: %d nodes on the held list, max %d", what, n, holdTestMax)
	}
	max := holdTestMax + 4 + extra
	if live := h.u.Live(); live > max {
		h.t.Fatalf("%s: the union holds %d nodes, want at most %d", what, live, max)
	}
	if fds := openFds(h.t); fds > base+2*max {
		h.t.Fatalf("%s: %d descriptors open, %d before: more than %d nodes hold", what, fds, base, max)
	}
}

func openFds(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestIdleNodesLetGo: the guest looks up far more objects than the
// server keeps held; the server's descriptors stay bounded, and every
// object stays usable by its node id: stat, read and write all of them
// again, after renames of their ancestors, with a hard link unlinked by
// one name and a file unlinked while open.
func TestIdleNodesLetGo(t *testing.T) {
	const files = 300
	h := newHoldFS(t, files)
	base := openFds(t)
	a, _ := h.mustLookup(1, "a")
	b, _ := h.mustLookup(a, "b")
	nodes := make([]uint64, files)
	inos := make([]uint64, files)
	for i := range nodes {
		nodes[i], inos[i] = h.mustLookup(b, fmt.Sprintf("f%03d", i))
		h.bounded(fmt.Sprintf("after %d lookups", i+1), base, 0)
	}
	h1, ino1 := h.mustLookup(a, "h1")
	h2, ino2 := h.mustLookup(a, "h2")
	if h1 != h2 || ino1 != ino2 {
		t.Fatalf("two names of one file: nodes %d, %d, ids %d, %d", h1, h2, ino1, ino2)
	}

	// A file open for writing, then unlinked: it must stay usable by its
	// node id through all that follows.
	victim := files - 1
	fh, st := h.open(nodes[victim], unix.O_RDWR)
	if !st.Ok() {
		t.Fatalf("OPEN f%03d: %v", victim, st)
	}
	h.unlink(b, fmt.Sprintf("f%03d", victim))

	// Rename both ancestors of the files, and let everything go again.
	h.rename(1, "a", 1, "a2")
	h.rename(a, "b", a, "c")
	for i := 0; i < files-1; i++ {
		attr, st := h.getattr(nodes[i])
		if !st.Ok() || attr.Ino != inos[i] || attr.Size != uint64(len("lower 000")) {
			t.Fatalf("GETATTR f%03d after renames: %v, ino %d (want %d), size %d", i, st, attr.Ino, inos[i], attr.Size)
		}
		h.bounded(fmt.Sprintf("after %d getattrs", i+1), base, 1)
	}

	// Write half of them (copy-up) and read all back.
	for i := 0; i < files-1; i += 2 {
		wfh, st := h.open(nodes[i], unix.O_WRONLY|unix.O_TRUNC)
		if !st.Ok() {
			t.Fatalf("OPEN f%03d for writing: %v", i, st)
		}
		data := []byte(fmt.Sprintf("upper %03d", i))
		if n, st := h.p.raw.Write(nil, &fuse.WriteIn{InHeader: hdr(nodes[i]), Fh: wfh, Size: uint32(len(data))}, data); !st.Ok() || int(n) != len(data) {
			t.Fatalf("WRITE f%03d: %d, %v", i, n, st)
		}
		h.release(nodes[i], wfh)
	}
	for i := 0; i < files-1; i++ {
		want := fmt.Sprintf("lower %03d", i)
		if i%2 == 0 {
			want = fmt.Sprintf("upper %03d", i)
		}
		if got, st := h.readAll(nodes[i]); !st.Ok() || got != want {
			t.Fatalf("read f%03d: %q, %v; want %q", i, got, st, want)
		}
		h.bounded(fmt.Sprintf("after %d reads", i+1), base, 1)
	}
	if b, err := os.ReadFile(filepath.Join(h.upper, "a2", "c", "f000")); err != nil || string(b) != "upper 000" {
		t.Fatalf("upper a2/c/f000: %q, %v", b, err)
	}

	// The unlinked file, still open: its attributes by node id, and its
	// data through the handle.
	if attr, st := h.getattr(nodes[victim]); !st.Ok() || attr.Ino != inos[victim] || attr.Nlink != 0 {
		t.Fatalf("GETATTR of the unlinked open file: %v, ino %d (want %d), nlink %d", st, attr.Ino, inos[victim], attr.Nlink)
	}
	if got, st := h.read(nodes[victim], fh); !st.Ok() || got != fmt.Sprintf("lower %03d", victim) {
		t.Fatalf("read of the unlinked open file: %q, %v", got, st)
	}
	h.release(nodes[victim], fh)

	// The hard link: unlink the name it was last looked up by, let it
	// go, and use it by node id (found again by its other name).
	h.unlink(a, "h2")
	for i := 0; i < holdTestMax+1; i++ {
		h.getattr(nodes[i])
	}
	if got, st := h.readAll(h1); !st.Ok() || got != "linked" {
		t.Fatalf("read of the hard link by its remaining name: %q, %v", got, st)
	}
	if attr, st := h.getattr(h1); !st.Ok() || attr.Ino != ino1 {
		t.Fatalf("GETATTR of the hard link: %v, ino %d (want %d)", st, attr.Ino, ino1)
	}
	h.bounded("at the end", base, 0)
}

// TestIdleNodesConcurrent: requests on many nodes at once, while nodes
// let go and are found again under them (run with -race).
func TestIdleNodesConcurrent(t *testing.T) {
	const files = 200
	h := newHoldFS(t, files)
	_, b, nodes := h.lookupFiles(files)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for round := 0; round < 3; round++ {
				for i := g; i < files; i += 3 {
					want := fmt.Sprintf("lower %03d", i)
					if _, st := h.getattr(nodes[i]); !st.Ok() {
						errs <- fmt.Errorf("GETATTR f%03d: %v", i, st)
						return
					}
					if got, st := h.readAll(nodes[i]); !st.Ok() || got != want {
						errs <- fmt.Errorf("read f%03d: %q, %v", i, got, st)
						return
					}
					if _, _, st := h.lookup(b, fmt.Sprintf("f%03d", i)); !st.Ok() {
						errs <- fmt.Errorf("LOOKUP f%03d: %v", i, st)
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := h.p.t.h.Len(); n > holdTestMax {
		t.Fatalf("%d nodes on the held list, max %d", n, holdTestMax)
	}
}

// TestIdleNodesKept: a node with an open handle, and a node with no name
// left (unlinked), keep their union.Node however many others are used
// after them: the first would save no descriptor (its open file holds
// the object) and the second could not be found again.
func TestIdleNodesKept(t *testing.T) {
	const files = 4 * holdTestMax
	h := newHoldFS(t, files)
	a, _ := h.mustLookup(1, "a")
	b, _ := h.mustLookup(a, "b")
	open, _ := h.mustLookup(b, "f000")
	h.mustLookup(b, "f001")
	dir := h.p.root.GetChild("a").GetChild("b")
	openNode := dir.GetChild("f000").Operations().(*node)
	gone := dir.GetChild("f001").Operations().(*node)
	fh, st := h.open(open, unix.O_RDONLY)
	if !st.Ok() {
		t.Fatalf("OPEN f000: %v", st)
	}
	defer h.release(open, fh)
	h.unlink(b, "f001")
	for i := 2; i < files; i++ {
		h.mustLookup(b, fmt.Sprintf("f%03d", i))
	}
	for _, c := range []struct {
		what string
		n    *node
	}{{"open", openNode}, {"unlinked", gone}} {
		c.n.mu.Lock()
		un := c.n.un
		c.n.mu.Unlock()
		if un == nil {
			t.Errorf("the %s node let go of its union.Node", c.what)
		}
	}
}

// BenchmarkGetattr: GETATTR round-robin over 1,000 known files, all held
// (held) or each let go before it is asked again (refind: a lookup in
// the layers per request, the worst case of a working set larger than
// the held list).
func BenchmarkGetattr(b *testing.B) {
	const files = 1000
	for _, c := range []struct {
		name string
		max  int
	}{{"held", 2 * files}, {"refind", holdTestMax}} {
		b.Run(c.name, func(b *testing.B) {
			h := newHoldFSMax(b, files, c.max)
			_, _, nodes := h.lookupFiles(files)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, st := h.getattr(nodes[i%files]); !st.Ok() {
					b.Fatal(st)
				}
			}
		})
	}
}

// TestIdleNodesForgotten: FORGET of nodes, held or let go, leaves the
// union holding nothing for them, and the names can be looked up again.
func TestIdleNodesForgotten(t *testing.T) {
	const files = 4 * holdTestMax
	h := newHoldFS(t, files)
	_, b, nodes := h.lookupFiles(files)
	for _, n := range nodes {
		h.p.raw.Forget(n, 1)
	}
	// Left: the root, a, b (held or let go), nothing of the files.
	if live := h.u.Live(); live > 3 {
		t.Fatalf("after FORGET of every file the union holds %d nodes, want at most 3", live)
	}
	if n := h.p.t.h.Len(); n > 2 {
		t.Fatalf("after FORGET of every file %d nodes are on the held list", n)
	}
	n, ino := h.mustLookup(b, "f000")
	if attr, st := h.getattr(n); !st.Ok() || attr.Ino != ino {
		t.Fatalf("GETATTR after FORGET and LOOKUP: %v, ino %d want %d", st, attr.Ino, ino)
	}
}
