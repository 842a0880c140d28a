package p9srv

import (
	"math"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
)

// POSIX record locks: Tlock and Tgetlock are answered from the server's
// lock table (locktable.go). The server never waits for a lock: a request
// that conflicts gets LockStatusBlocked, which Linux turns into EAGAIN for
// F_SETLK and retries for F_SETLKW.

// lockQuery is a Tgetlock as the tap decoded it, and its answer.
type lockQuery struct {
	typ           uint8
	start, length uint64
	procID        uint32
	client        string

	answered bool
	result   struct {
		typ           uint8
		start, length uint64
		procID        uint32
	}
}

// Lock implements p9.File.Lock, and Tgetlock, which the tap delivers as a
// Tlock (see wiretap.go).
func (f *file) Lock(pid int, typ p9.LockType, flags p9.LockFlags, start, length uint64, client string) (p9.LockStatus, error) {
	if f.open.Load() == nil {
		return p9.LockStatusError, linux.EBADF
	}
	if r := f.srv.requests.current(msgTgetlock); r != nil {
		f.getLock(r.conn, r.getlock)
		return p9.LockStatusOK, nil
	}
	var conn uint64
	if r := f.srv.requests.current(msgTlock); r != nil {
		conn = r.conn
	}
	if err := checkLock(typ, start, length); err != nil {
		return p9.LockStatusError, err
	}
	owner := lockOwner{conn: conn, client: client, pid: uint32(pid)}
	end := lockEnd(start, length)
	if typ == p9.Unlock {
		f.srv.locks.unlock(f.id, owner, start, end)
		return p9.LockStatusOK, nil
	}
	if !f.srv.locks.set(f.id, owner, f, typ == p9.WriteLock, start, end) {
		return p9.LockStatusBlocked, nil
	}
	return p9.LockStatusOK, nil
}

// getLock answers q with the first lock of another owner that would
// conflict, or with type Unlock. Linux sends the query with type Unlock
// when it holds no conflicting lock itself; that asks, as F_GETLK with a
// write lock would, whether anyone else holds any lock there.
func (f *file) getLock(conn uint64, q *lockQuery) {
	owner := lockOwner{conn: conn, client: q.client, pid: q.procID}
	write := q.typ != uint8(p9.ReadLock)
	q.answered = true
	l, busy := f.srv.locks.conflict(f.id, owner, write, q.start, lockEnd(q.start, q.length))
	if !busy {
		q.result.typ = uint8(p9.Unlock)
		q.result.start, q.result.length = q.start, q.length
		return
	}
	q.result.typ = uint8(p9.ReadLock)
	if l.write {
		q.result.typ = uint8(p9.WriteLock)
	}
	q.result.start = l.start
	if l.end != math.MaxUint64 {
		q.result.length = l.end - l.start
	}
	q.result.procID = l.owner.pid
}

// checkLock refuses lock types and ranges fcntl would refuse.
func checkLock(typ p9.LockType, start, length uint64) error {
	switch typ {
	case p9.ReadLock, p9.WriteLock, p9.Unlock:
	default:
		return linux.EINVAL
	}
	if start > math.MaxInt64 || length > math.MaxInt64 || start+length > math.MaxInt64 {
		return linux.EINVAL
	}
	return nil
}
