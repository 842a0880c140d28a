package virtfs

import (
	"encoding/binary"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// TestProtocolDirectReadsWhereMmapAllowed: a guest whose INIT offers
// FUSE_DIRECT_IO_ALLOW_MMAP (Linux 6.6+) gets it accepted in the reply,
// and then every open of a regular file is FOPEN_DIRECT_IO (reads
// included); a guest that does not offer it (6.1) gets neither, and its
// read and read-write opens keep the page cache as before. A later INIT
// (the guest remounts) decides again.
func TestProtocolDirectReadsWhereMmapAllowed(t *testing.T) {
	p, _ := newProtocol(t)
	call := caller(t, p)
	// initWith sends INIT with flags and flags2 and returns the reply's.
	initWith := func(flags, flags2 uint32) (uint32, uint32) {
		t.Helper()
		in := initArgs()
		binary.LittleEndian.PutUint32(in[12:], flags)
		binary.LittleEndian.PutUint32(in[16:], flags2)
		r := call(opInit, 0, in)
		if len(r) < 36 {
			t.Fatalf("INIT reply of %d bytes, want fuse_init_out", len(r))
		}
		return binary.LittleEndian.Uint32(r[12:]), binary.LittleEndian.Uint32(r[32:])
	}
	const keep, direct = fuse.FOPEN_KEEP_CACHE, fuse.FOPEN_DIRECT_IO
	const allowMmap = 1 << 4 // FUSE_DIRECT_IO_ALLOW_MMAP, bit 36, in flags2
	opens := func(when string, want map[uint32]uint32) {
		t.Helper()
		node := binary.LittleEndian.Uint64(call(opLookup, 1, []byte("f\x00")))
		for _, mode := range []uint32{unix.O_RDONLY, unix.O_RDWR, unix.O_WRONLY} {
			in := make([]byte, 8)
			binary.LittleEndian.PutUint32(in, mode)
			r := call(opOpen, node, in)
			if got := binary.LittleEndian.Uint32(r[8:]) & (keep | direct); got != want[mode] {
				t.Errorf("%s: open mode %d: flags %#x, want %#x", when, mode, got, want[mode])
			}
		}
	}
	const initExt = 1 << 30 // FUSE_INIT_EXT: flags2 is there

	flags, flags2 := initWith(initExt, allowMmap)
	if flags&initExt == 0 || flags2&allowMmap == 0 {
		t.Fatalf("INIT offering DIRECT_IO_ALLOW_MMAP: reply flags %#x flags2 %#x, want INIT_EXT and the flag accepted", flags, flags2)
	}
	opens("after an INIT with the flag", map[uint32]uint32{
		unix.O_RDONLY: keep | direct, unix.O_RDWR: keep | direct, unix.O_WRONLY: keep | direct})

	// 6.1 sends no flags2 at all; the reply must not claim the flag.
	if _, flags2 := initWith(0, 0); flags2&allowMmap != 0 {
		t.Fatalf("INIT without the flag: reply flags2 %#x accepts it", flags2)
	}
	opens("after an INIT without the flag", map[uint32]uint32{
		unix.O_RDONLY: keep, unix.O_RDWR: keep, unix.O_WRONLY: keep | direct})
}

// TestSawInitIgnoresShortAndFailedReplies: an INIT reply too short to
// hold flags2, or an error reply, never turns direct reads on.
func TestSawInitIgnoresShortAndFailedReplies(t *testing.T) {
	p, _ := newProtocol(t)
	full := make([]byte, outHeaderSize+64)
	binary.LittleEndian.PutUint32(full[outHeaderSize+initOutFlags:], fuse.CAP_INIT_EXT)
	binary.LittleEndian.PutUint32(full[outHeaderSize+initOutFlags2:], directMmapFlag)
	p.sawInit([][]byte{full[:10], full[10:]}, len(full))
	if !p.t.readDirect.Load() {
		t.Fatal("a whole INIT reply accepting the flag, split across buffers, was not noted")
	}
	p.sawInit([][]byte{full}, outHeaderSize+initOutFlags2) // 7.22-sized reply: no flags2
	if p.t.readDirect.Load() {
		t.Error("a reply without room for flags2 left direct reads on")
	}
	p.t.readDirect.Store(true)
	binary.LittleEndian.PutUint32(full[4:], ^uint32(4)) // -EIO
	p.sawInit([][]byte{full}, len(full))
	if p.t.readDirect.Load() {
		t.Error("an error reply left direct reads on")
	}
}
