package virtfs

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

const opWrite = 16

// TestProtocolWriteOnlyOpensAreDirect: over virtio-fs a write-only open
// is answered FOPEN_DIRECT_IO and read or read-write opens are not; once
// a direct open has written, the next open comes without
// FOPEN_KEEP_CACHE (the guest drops its stale pages), and the one after
// keeps the cache again.
func TestProtocolWriteOnlyOpensAreDirect(t *testing.T) {
	p, upper := newProtocol(t)
	init := initArgs()
	call := caller(t, p)
	call(opInit, 0, init)
	node := binary.LittleEndian.Uint64(call(opLookup, 1, []byte("f\x00")))
	open := func(flags uint32) (fh uint64, fopen uint32) {
		t.Helper()
		in := make([]byte, 8)
		binary.LittleEndian.PutUint32(in, flags)
		r := call(opOpen, node, in)
		return binary.LittleEndian.Uint64(r), binary.LittleEndian.Uint32(r[8:])
	}
	const keep, direct = fuse.FOPEN_KEEP_CACHE, fuse.FOPEN_DIRECT_IO
	for _, c := range []struct {
		name  string
		flags uint32
		want  uint32
	}{{"O_RDONLY", unix.O_RDONLY, keep}, {"O_RDWR", unix.O_RDWR, keep}, {"O_WRONLY before any write", unix.O_WRONLY, keep | direct}} {
		if _, got := open(c.flags); got&(keep|direct) != c.want {
			t.Errorf("open %s: flags %#x, want %#x", c.name, got&(keep|direct), c.want)
		}
	}
	fh, _ := open(unix.O_WRONLY)
	data := []byte("new data, longer than the old")
	w := make([]byte, 40+len(data)) // fh, offset, size, write_flags, lock_owner, flags, padding, data
	binary.LittleEndian.PutUint64(w, fh)
	binary.LittleEndian.PutUint32(w[16:], uint32(len(data)))
	copy(w[40:], data)
	if r := call(opWrite, node, w); binary.LittleEndian.Uint32(r) != uint32(len(data)) {
		t.Fatalf("WRITE: wrote %d of %d", binary.LittleEndian.Uint32(r), len(data))
	}
	if got, err := os.ReadFile(filepath.Join(upper, "f")); err != nil || string(got) != string(data) {
		t.Fatalf("upper f after WRITE: %q, %v", got, err)
	}
	if _, got := open(unix.O_RDONLY); got&(keep|direct) != 0 {
		t.Errorf("first open after a direct write: flags %#x, want neither KEEP_CACHE nor DIRECT_IO", got)
	}
	if _, got := open(unix.O_RDONLY); got&(keep|direct) != keep {
		t.Errorf("second open after a direct write: flags %#x, want KEEP_CACHE", got)
	}
}

// TestMountOpensAreNotDirect: the host FUSE mount behind virtio-9p
// (Mount) never answers FOPEN_DIRECT_IO; QEMU's 9p server writes there.
func TestMountOpensAreNotDirect(t *testing.T) {
	n := &node{t: &tree{}}
	if fopen, direct := n.openFlags(unix.O_WRONLY); direct || fopen != fuse.FOPEN_KEEP_CACHE {
		t.Fatalf("write-only open on the FUSE mount: flags %#x, direct %v", fopen, direct)
	}
}
