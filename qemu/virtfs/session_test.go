package virtfs

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

type countingHandler struct{ calls int }

func (h *countingHandler) Handle(queue int, in, out [][]byte) int {
	h.calls++
	return copy(out[0], "served")
}

// fuseRequest is a FUSE header with opcode and unique, split after 6
// bytes (as a guest's buffers may be).
func fuseRequest(op uint32, unique uint64) [][]byte {
	b := make([]byte, inHeaderSize)
	binary.LittleEndian.PutUint32(b, inHeaderSize)
	binary.LittleEndian.PutUint32(b[4:], op)
	binary.LittleEndian.PutUint64(b[8:], unique)
	binary.LittleEndian.PutUint64(b[16:], 77) // a node id of the dead worker's session
	return [][]byte{b[:6], b[6:]}
}

// errReply checks a fuse_out_header written across two buffers.
func errReply(t *testing.T, what string, n int, out [][]byte, errno unix.Errno, unique uint64) {
	t.Helper()
	r := append(append([]byte{}, out[0]...), out[1]...)
	if n != 16 || binary.LittleEndian.Uint32(r) != 16 || int32(binary.LittleEndian.Uint32(r[4:])) != -int32(errno) || binary.LittleEndian.Uint64(r[8:]) != unique {
		t.Errorf("%s: %d bytes %x, want -%d for %d", what, n, r[:16], errno, unique)
	}
}

// TestSession: before a FUSE_INIT, requests (of a session a dead
// worker had) are answered ENOTCONN without reaching the union, and
// forgets get no reply; INIT and what follows reach it. Lost requests
// are answered EIO.
func TestSession(t *testing.T) {
	h := &countingHandler{}
	s := &Session{fuse: h}
	out := func() [][]byte { return [][]byte{make([]byte, 10), make([]byte, 30)} }
	o := out()
	errReply(t, "GETATTR before INIT", s.Handle(1, fuseRequest(3, 9), o), o, unix.ENOTCONN, 9)
	if n := s.Handle(0, fuseRequest(opForget, 10), out()); n != 0 {
		t.Errorf("FORGET before INIT: %d bytes", n)
	}
	if n := s.Handle(1, [][]byte{make([]byte, 8)}, [][]byte{make([]byte, 4)}); n != 0 {
		t.Errorf("short request, no room: %d bytes", n)
	}
	if h.calls != 0 {
		t.Fatalf("the union saw %d requests before INIT", h.calls)
	}
	if n := s.Handle(1, fuseRequest(opInit, 11), out()); n != 6 || h.calls != 1 {
		t.Fatalf("INIT: %d bytes, %d calls", n, h.calls)
	}
	if n := s.Handle(1, fuseRequest(3, 12), out()); n != 6 || h.calls != 2 {
		t.Fatalf("GETATTR after INIT: %d bytes, %d calls", n, h.calls)
	}
	o = out()
	errReply(t, "lost WRITE", s.Lost(1, fuseRequest(16, 13), o), o, unix.EIO, 13)
	if n := s.Lost(0, fuseRequest(opBatchForget, 14), out()); n != 0 {
		t.Errorf("lost BATCH_FORGET: %d bytes", n)
	}
}
