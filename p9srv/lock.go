package p9srv

import (
	"math"

	"github.com/union9p/union9p/p9srv/wire"
	"golang.org/x/sys/unix"
)

// POSIX record locks: Tlock and Tgetlock are answered from the lock table
// of the union (locktable.go). The server never waits for a lock: a
// request that conflicts gets LockBlocked, which Linux turns into EAGAIN
// for F_SETLK and retries for F_SETLKW.

// lock answers Tlock. The owner is the connection, the client's name and
// its pid.
func (c *conn) lock(r *request, m *wire.TlockReq) error {
	f, _, err := c.openFid(m.Fid)
	if err != nil {
		return err
	}
	defer c.putFid(f)
	if err := checkLock(m.Type, m.Start, m.Length); err != nil {
		return err
	}
	locks := &c.st.locks
	owner := lockOwner{conn: c.id, client: m.ClientID, pid: m.ProcID}
	end := lockEnd(m.Start, m.Length)
	status := wire.LockSuccess
	switch {
	case m.Type == wire.LockUnlock:
		locks.unlock(f.id, owner, m.Start, end)
	case !locks.set(f.id, owner, f, m.Type == wire.LockWrite, m.Start, end):
		status = wire.LockBlocked
	}
	r.out.U8(status)
	return nil
}

// getlock answers Tgetlock with the first lock of another owner that would
// conflict, or with type Unlock. Linux sends the query with type Unlock
// when it holds no conflicting lock itself; that asks, as F_GETLK with a
// write lock would, whether anyone else holds any lock there.
func (c *conn) getlock(r *request, m *wire.TgetlockReq) error {
	f, _, err := c.openFid(m.Fid)
	if err != nil {
		return err
	}
	defer c.putFid(f)
	owner := lockOwner{conn: c.id, client: m.ClientID, pid: m.ProcID}
	write := m.Type != wire.LockRead
	res := wire.Lock{ClientID: m.ClientID}
	l, busy := c.st.locks.conflict(f.id, owner, write, m.Start, lockEnd(m.Start, m.Length))
	if !busy {
		res.Type, res.Start, res.Length = wire.LockUnlock, m.Start, m.Length
	} else {
		res.Type = wire.LockRead
		if l.write {
			res.Type = wire.LockWrite
		}
		res.Start = l.start
		if l.end != math.MaxUint64 {
			res.Length = l.end - l.start
		}
		res.ProcID = l.owner.pid
	}
	r.out.Getlock(&res)
	return nil
}

// checkLock refuses lock types and ranges fcntl would refuse.
func checkLock(typ uint8, start, length uint64) error {
	switch typ {
	case wire.LockRead, wire.LockWrite, wire.LockUnlock:
	default:
		return unix.EINVAL
	}
	if start > math.MaxInt64 || length > math.MaxInt64 || start+length > math.MaxInt64 {
		return unix.EINVAL
	}
	return nil
}
