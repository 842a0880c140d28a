package virtfs

import (
	"encoding/binary"
	"sync/atomic"
	"syscall"
)

// Session stands between a virtiofs device and a FUSE server (a
// Protocol): it answers the requests of a FUSE session that server does
// not have.
//
// A server started after another one died (a restarted virtiofs worker)
// has none of the guest's FUSE node ids or open files: they lived in the
// dead one. Until the guest starts a new session with FUSE_INIT, every
// request is answered ENOTCONN ("transport endpoint is not connected",
// what a FUSE mount says when its server is gone), which never reaches
// the union (whose FUSE bridge would take the unknown node ids for its
// own). FORGET, BATCH_FORGET and INTERRUPT have no reply and are
// dropped. The guest gets a new session when it mounts again: Linux's
// virtiofs keeps one superblock, and one session, per device while
// anything holds it, so the old mount must be gone first (README
// "Guests").
//
// Requests the dead server had taken and not answered are answered EIO
// (Lost): whether they took effect is unknown.
//
// A first server is the same: the guest's first request is its
// FUSE_INIT. Handle and Lost are safe for concurrent use.
type Session struct {
	fuse interface {
		Handle(queue int, in, out [][]byte) int
	}
	started atomic.Bool // a FUSE_INIT has come
}

// NewSession gates p's requests by the guest's FUSE session.
func NewSession(p *Protocol) *Session { return &Session{fuse: p} }

// FUSE opcodes the session and Protocol look at before go-fuse does.
const (
	opForget      = 2
	opInit        = 26
	opInterrupt   = 36
	opBatchForget = 42
	opSyncfs      = 50 // syncfs.go
)

// inHeaderSize is struct fuse_in_header (len, opcode, unique, nodeid,
// uid, gid, pid, padding).
const inHeaderSize = 40

func (s *Session) Handle(queue int, in, out [][]byte) int {
	if !s.started.Load() {
		op, ok := opcode(in)
		switch {
		case ok && op == opInit:
			s.started.Store(true)
		case ok && noReply(op):
			return 0
		default:
			return errorReply(in, out, syscall.ENOTCONN)
		}
	}
	return s.fuse.Handle(queue, in, out)
}

// Lost answers a request the previous server took and never answered.
func (s *Session) Lost(queue int, in, out [][]byte) int {
	if op, ok := opcode(in); ok && noReply(op) {
		return 0
	}
	return errorReply(in, out, syscall.EIO)
}

// noReply reports whether requests with opcode op get no reply.
func noReply(op uint32) bool { return op == opForget || op == opBatchForget || op == opInterrupt }

// opcode reads request in's opcode; false if in is shorter than a
// fuse_in_header.
func opcode(in [][]byte) (uint32, bool) {
	var h [inHeaderSize]byte
	if copyIov(h[:], in, 0) < inHeaderSize {
		return 0, false
	}
	return binary.LittleEndian.Uint32(h[4:]), true
}
