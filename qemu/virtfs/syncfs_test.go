package virtfs

import (
	"encoding/binary"
	"testing"
)

// TestProtocolSyncfs: the guest's sync(2) (FUSE_SYNCFS, fuse_syncfs_in is
// one u64) is answered success after syncing the upper, not ENOSYS, which
// would make the guest stop asking and its syncs leave the union's
// writes undurable.
func TestProtocolSyncfs(t *testing.T) {
	p, _ := newProtocol(t)
	out := make([]byte, 4096)
	p.Handle(1, request(opInit, 1, 0, initArgs()), [][]byte{out})
	n := p.Handle(1, request(opSyncfs, 2, 1, make([]byte, 8)), [][]byte{out})
	if e := outHeader(t, out, n, 2); e != 0 {
		t.Fatalf("SYNCFS: error %d", e)
	}
	if n != outHeaderSize {
		t.Fatalf("SYNCFS: reply of %d bytes, want a header only", n)
	}
	// With no room for the reply: nothing written.
	if n := p.Handle(1, request(opSyncfs, 3, 1, make([]byte, 8)), nil); n != 0 {
		t.Fatalf("SYNCFS with no room: %d bytes", n)
	}
	// A request too short to carry an opcode is not taken for one.
	if n := p.Handle(1, [][]byte{{1, 2}}, [][]byte{out}); n != outHeaderSize || int32(binary.LittleEndian.Uint32(out[4:])) == 0 {
		t.Fatalf("short request answered %d bytes, error %d", n, int32(binary.LittleEndian.Uint32(out[4:])))
	}
}
