package virtfs

import (
	"encoding/binary"
	"io"
	"log"
	"os"
	"path/filepath"
	"testing"

	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// FUSE opcodes and sizes used below (include/uapi/linux/fuse.h).
const (
	opLookup = 1
	opRead   = 15
	opOpen   = 14
	opMkdir  = 9
)

func newProtocol(t *testing.T) (*Protocol, string) {
	t.Helper()
	return newProtocolSquashed(t, union.Squash{})
}

// newProtocolSquashed serves a fresh union (lower file "f") with squash.
func newProtocolSquashed(t *testing.T, squash union.Squash) (*Protocol, string) {
	t.Helper()
	base := t.TempDir()
	lower, upper, work := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work")
	for _, d := range []string{lower, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "f"), []byte("lower data"), 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := union.Open(union.Options{Lowers: []string{lower}, Upper: upper, Workdir: work})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	p, err := NewProtocol(u, log.New(io.Discard, "", 0), squash)
	if err != nil {
		t.Fatal(err)
	}
	return p, upper
}

// caller returns a function that sends one request to p and returns its
// reply's body, failing the test on an error reply. The body is valid
// until the next call.
func caller(t *testing.T, p *Protocol) func(op uint32, node uint64, args []byte) []byte {
	out := make([]byte, 4096)
	unique := uint64(1)
	return func(op uint32, node uint64, args []byte) []byte {
		t.Helper()
		unique++
		n := p.Handle(1, request(op, unique, node, args), [][]byte{out})
		if e := outHeader(t, out, n, unique); e != 0 {
			t.Fatalf("op %d: error %d", op, e)
		}
		return out[outHeaderSize:n]
	}
}

// request builds fuse_in_header + args, split into two buffers at an
// odd place (guest pages need not match the structures).
func request(op uint32, unique, node uint64, args []byte) [][]byte {
	b := make([]byte, inHeaderSize+len(args))
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	binary.LittleEndian.PutUint32(b[4:], op)
	binary.LittleEndian.PutUint64(b[8:], unique)
	binary.LittleEndian.PutUint64(b[16:], node)
	copy(b[inHeaderSize:], args)
	return [][]byte{b[:7], b[7:]}
}

func outHeader(t testing.TB, out []byte, n int, unique uint64) int32 {
	t.Helper()
	if n < outHeaderSize {
		t.Fatalf("reply of %d bytes", n)
	}
	if l := binary.LittleEndian.Uint32(out); int(l) != n {
		t.Fatalf("reply header says %d bytes, %d written", l, n)
	}
	if u := binary.LittleEndian.Uint64(out[8:]); u != unique {
		t.Fatalf("reply unique %d, want %d", u, unique)
	}
	return int32(binary.LittleEndian.Uint32(out[4:]))
}

// TestProtocolReadIntoGuestBuffers: INIT, LOOKUP, OPEN and READ answered
// through in-memory buffers, the READ's data landing in the buffer after
// the header, split across two buffers as guest pages would be.
func TestProtocolReadIntoGuestBuffers(t *testing.T) {
	p, _ := newProtocol(t)
	init := initArgs()
	out := make([]byte, 4096)
	n := p.Handle(1, request(opInit, 1, 0, init), [][]byte{out})
	if e := outHeader(t, out, n, 1); e != 0 {
		t.Fatalf("INIT: error %d", e)
	}
	n = p.Handle(1, request(opLookup, 2, 1, []byte("f\x00")), [][]byte{out})
	if e := outHeader(t, out, n, 2); e != 0 {
		t.Fatalf("LOOKUP: error %d", e)
	}
	node := binary.LittleEndian.Uint64(out[outHeaderSize:])
	open := make([]byte, 8) // flags O_RDONLY, open_flags
	n = p.Handle(1, request(opOpen, 3, node, open), [][]byte{out})
	if e := outHeader(t, out, n, 3); e != 0 {
		t.Fatalf("OPEN: error %d", e)
	}
	fh := binary.LittleEndian.Uint64(out[outHeaderSize:])
	read := make([]byte, 40) // fh, offset, size, read_flags, lock_owner, flags, padding
	binary.LittleEndian.PutUint64(read, fh)
	binary.LittleEndian.PutUint32(read[16:], 4096)
	hdr, data1, data2 := make([]byte, outHeaderSize), make([]byte, 5), make([]byte, 4096)
	n = p.Handle(1, request(opRead, 4, node, read), [][]byte{hdr, data1, data2})
	if e := outHeader(t, hdr, n, 4); e != 0 {
		t.Fatalf("READ: error %d", e)
	}
	if got := string(data1) + string(data2[:n-outHeaderSize-5]); got != "lower data" {
		t.Fatalf("READ: %q", got)
	}
}

// TestProtocolMalformed: requests too short to parse, or with no room
// for their reply, are answered EIO (or not at all) and the server goes
// on.
func TestProtocolMalformed(t *testing.T) {
	p, _ := newProtocol(t)
	out := make([]byte, 64)
	if n := p.Handle(1, [][]byte{{1, 2, 3}}, [][]byte{out}); n != outHeaderSize || int32(binary.LittleEndian.Uint32(out[4:])) != -int32(unix.EIO) {
		t.Fatalf("short request: %d bytes, error %d", n, int32(binary.LittleEndian.Uint32(out[4:])))
	}
	if n := p.Handle(1, [][]byte{{1, 2, 3}}, nil); n != 0 {
		t.Fatalf("short request, no reply room: %d bytes", n)
	}
	// LOOKUP whose reply (an entry) does not fit in 20 bytes.
	small := make([]byte, 20)
	if n := p.Handle(1, request(opLookup, 9, 1, []byte("f\x00")), [][]byte{small}); n != outHeaderSize {
		t.Fatalf("LOOKUP with no room: %d bytes", n)
	}
	// A lying length in the header.
	req := request(opLookup, 10, 1, []byte("f\x00"))
	binary.LittleEndian.PutUint32(req[0], 1<<30)
	p.Handle(1, req, [][]byte{out})
	init := initArgs()
	big := make([]byte, 4096)
	n := p.Handle(1, request(opInit, 11, 0, init), [][]byte{big})
	if e := outHeader(t, big, n, 11); e != 0 {
		t.Fatalf("INIT after malformed requests: error %d", e)
	}
}

// TestProtocolSetgidDirectory: over virtio-fs the caller is the guest's
// process, so the server applies a setgid directory's group (and, to a
// new directory, its setgid bit) itself, as Linux does on a local
// filesystem.
func TestProtocolSetgidDirectory(t *testing.T) {
	p, upper := newProtocol(t)
	sg := filepath.Join(upper, "sg")
	if err := os.Mkdir(sg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(sg, 0, 1000); err != nil {
		t.Skip("chown needs root:", err)
	}
	if err := unix.Chmod(sg, 0o2775); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 4096)
	init := initArgs()
	p.Handle(1, request(opInit, 1, 0, init), [][]byte{out})
	n := p.Handle(1, request(opLookup, 2, 1, []byte("sg\x00")), [][]byte{out})
	if e := outHeader(t, out, n, 2); e != 0 {
		t.Fatalf("LOOKUP: error %d", e)
	}
	dir := binary.LittleEndian.Uint64(out[outHeaderSize:])
	// fuse_mkdir_in: mode, umask; then the name. The caller (uid 0,
	// gid 0 in the header) is not the directory's group.
	mkdir := make([]byte, 8)
	binary.LittleEndian.PutUint32(mkdir, 0o755)
	n = p.Handle(1, request(opMkdir, 3, dir, append(mkdir, "d\x00"...)), [][]byte{out})
	if e := outHeader(t, out, n, 3); e != 0 {
		t.Fatalf("MKDIR: error %d", e)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(sg, "d"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Gid != 1000 || st.Mode&unix.S_ISGID == 0 {
		t.Fatalf("new directory: gid %d mode %o, want gid 1000 and setgid", st.Gid, st.Mode)
	}
}

// initArgs is a FUSE_INIT request's fuse_init_in as Linux 6.1's virtio-fs
// sends it: protocol 7.38, max_readahead 1 MiB, no flags.
func initArgs() []byte {
	init := make([]byte, 64)
	binary.LittleEndian.PutUint32(init, 7)
	binary.LittleEndian.PutUint32(init[4:], 38)
	binary.LittleEndian.PutUint32(init[8:], 1<<20)
	return init
}
