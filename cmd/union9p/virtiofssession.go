package main

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/union9p/union9p/qemu/vhostuser"
	"golang.org/x/sys/unix"
)

// virtiofsSession stands between a virtiofs worker's device and the
// union's FUSE server: it answers the requests of a FUSE session the
// worker does not have.
//
// A worker started after another one died (qemuvirtiofs.go) has none of
// the guest's FUSE node ids or open files: they lived in the dead one.
// Until the guest starts a new session with FUSE_INIT, every request is
// answered ENOTCONN ("transport endpoint is not connected", what a FUSE
// mount says when its server is gone), which never reaches the union
// (whose FUSE bridge would take the unknown node ids for its own).
// FORGET, BATCH_FORGET and INTERRUPT have no reply and are dropped.
// The guest gets a new session when it mounts again: Linux's virtiofs
// keeps one superblock, and one session, per device while anything
// holds it, so the old mount must be gone first (README "Guests").
//
// Requests the dead worker had taken and not answered are answered EIO
// (Lost): whether they took effect is unknown.
//
// A first worker is the same: the guest's first request is its
// FUSE_INIT. Handle and Lost are safe for concurrent use.
type virtiofsSession struct {
	fuse    vhostuser.Handler
	started atomic.Bool // a FUSE_INIT has come
}

// FUSE opcodes this layer looks at.
const (
	fuseForget      = 2
	fuseInit        = 26
	fuseInterrupt   = 36
	fuseBatchForget = 42
	// fuseInHeaderSize is struct fuse_in_header (len, opcode, unique,
	// nodeid, uid, gid, pid, padding).
	fuseInHeaderSize = 40
)

func (s *virtiofsSession) Handle(queue int, in, out [][]byte) int {
	if !s.started.Load() {
		op, ok := fuseOpcode(in)
		switch {
		case ok && op == fuseInit:
			s.started.Store(true)
		case ok && (op == fuseForget || op == fuseBatchForget || op == fuseInterrupt):
			return 0
		default:
			return fuseErrorReply(in, out, unix.ENOTCONN)
		}
	}
	return s.fuse.Handle(queue, in, out)
}

// Lost answers a request the previous worker took and never answered.
func (s *virtiofsSession) Lost(queue int, in, out [][]byte) int {
	if op, ok := fuseOpcode(in); ok && (op == fuseForget || op == fuseBatchForget || op == fuseInterrupt) {
		return 0
	}
	return fuseErrorReply(in, out, unix.EIO)
}

// fuseOpcode reads the request's opcode; false if in is shorter than a
// FUSE header.
func fuseOpcode(in [][]byte) (uint32, bool) {
	var h [fuseInHeaderSize]byte
	if gatherIov(h[:], in) < fuseInHeaderSize {
		return 0, false
	}
	return binary.LittleEndian.Uint32(h[4:]), true
}

// fuseErrorReply writes a fuse_out_header with -errno for the request's
// unique id into out; 0 if out has no room for it (the guest's driver
// then fails the request itself).
func fuseErrorReply(in, out [][]byte, errno unix.Errno) int {
	var h [fuseInHeaderSize]byte
	gatherIov(h[:], in)
	var r [16]byte
	binary.LittleEndian.PutUint32(r[0:], uint32(len(r)))
	binary.LittleEndian.PutUint32(r[4:], uint32(-int32(errno)))
	copy(r[8:], h[8:16]) // unique
	n := 0
	for _, b := range out {
		n += copy(b, r[n:])
	}
	if n < len(r) {
		return 0
	}
	return len(r)
}

// gatherIov copies the start of iov into dst.
func gatherIov(dst []byte, iov [][]byte) int {
	n := 0
	for _, b := range iov {
		n += copy(dst[n:], b)
		if n == len(dst) {
			break
		}
	}
	return n
}
