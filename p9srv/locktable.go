package p9srv

import (
	"math"
	"sync"
)

// lockTable holds the POSIX record locks that clients take, per object
// (the union's stable id). The locks live in the server, not on host
// descriptors: a client may write-lock a file it opened read-only (Linux
// sends flock(LOCK_EX) as a write lock whatever the open mode), and a
// lower file must never be opened for writing to carry such a lock.
//
// An owner is a process of a client: the connection, the client's name
// and its pid, as 9P2000.L's Tlock identifies it. Locks of one owner never
// conflict with each other and replace each other where they overlap, as
// fcntl(F_SETLK) does. Locks taken through a fid are dropped when the fid
// is closed, so a client that goes away leaves none behind.
//
// Safe for concurrent use; no method blocks.
type lockTable struct {
	mu    sync.Mutex
	locks map[uint64][]heldLock // by object id
}

type lockOwner struct {
	conn   uint64
	client string
	pid    uint32
}

// heldLock covers [start, end); end is math.MaxUint64 for "to the end of
// the file, however it grows".
type heldLock struct {
	owner      lockOwner
	write      bool
	start, end uint64
	via        *fid // the fid it was taken through
}

func lockEnd(start, length uint64) uint64 {
	if length == 0 || start+length < start {
		return math.MaxUint64
	}
	return start + length
}

// conflict returns the first lock on object id that conflicts with a lock
// of owner o (write or read) over [start, end), if any.
func (t *lockTable) conflict(id uint64, o lockOwner, write bool, start, end uint64) (heldLock, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.conflictLocked(id, o, write, start, end)
}

func (t *lockTable) conflictLocked(id uint64, o lockOwner, write bool, start, end uint64) (heldLock, bool) {
	for _, l := range t.locks[id] {
		if l.owner != o && l.start < end && start < l.end && (write || l.write) {
			return l, true
		}
	}
	return heldLock{}, false
}

// set takes a read or write lock for o over [start, end) unless another
// owner's lock conflicts; it reports whether it did.
func (t *lockTable) set(id uint64, o lockOwner, via *fid, write bool, start, end uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, busy := t.conflictLocked(id, o, write, start, end); busy {
		return false
	}
	t.unlockLocked(id, o, start, end)
	if t.locks == nil {
		t.locks = make(map[uint64][]heldLock)
	}
	t.locks[id] = append(t.locks[id], heldLock{owner: o, write: write, start: start, end: end, via: via})
	return true
}

// unlock releases o's locks over [start, end), splitting those that reach
// beyond it.
func (t *lockTable) unlock(id uint64, o lockOwner, start, end uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unlockLocked(id, o, start, end)
}

func (t *lockTable) unlockLocked(id uint64, o lockOwner, start, end uint64) {
	old := t.locks[id]
	if len(old) == 0 {
		return
	}
	kept := old[:0:0]
	for _, l := range old {
		if l.owner != o || l.end <= start || end <= l.start {
			kept = append(kept, l)
			continue
		}
		if l.start < start {
			left := l
			left.end = start
			kept = append(kept, left)
		}
		if end < l.end {
			right := l
			right.start = end
			kept = append(kept, right)
		}
	}
	t.store(id, kept)
}

// dropFid releases every lock taken through f.
func (t *lockTable) dropFid(id uint64, f *fid) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.locks[id]
	kept := old[:0:0]
	for _, l := range old {
		if l.via != f {
			kept = append(kept, l)
		}
	}
	t.store(id, kept)
}

func (t *lockTable) store(id uint64, ls []heldLock) {
	if len(ls) == 0 {
		delete(t.locks, id)
		return
	}
	t.locks[id] = ls
}
