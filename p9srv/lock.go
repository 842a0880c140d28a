package p9srv

import (
	"math"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"golang.org/x/sys/unix"
)

// POSIX record locks. Each fid opened by a client has its own host open
// file description, and locks are taken on it with F_OFD_SETLK: they
// conflict between clients (and between fids), and they are released when
// the fid's file is closed. The server never waits for a lock: a request
// that conflicts gets LockStatusBlocked, which Linux turns into EAGAIN for
// F_SETLK and retries for F_SETLKW.
//
// Linux's POSIX locks belong to a process, so two fids opened by one guest
// process on the same file conflict here where a local filesystem would
// merge them; v9fs takes the lock locally first, so this only shows when
// one process locks the same file through two descriptors.

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
	uf := f.open.Load()
	if uf == nil {
		return p9.LockStatusError, linux.EBADF
	}
	if r := f.srv.requests.current(msgTgetlock); r != nil {
		return p9.LockStatusOK, getLock(uf.Fd(), r.getlock)
	}
	fl, err := flockOf(typ, start, length)
	if err != nil {
		return p9.LockStatusError, err
	}
	switch err := unix.FcntlFlock(uintptr(uf.Fd()), unix.F_OFD_SETLK, &fl); err {
	case nil:
		return p9.LockStatusOK, nil
	case unix.EAGAIN, unix.EACCES:
		return p9.LockStatusBlocked, nil
	default:
		return p9.LockStatusError, errno(err)
	}
}

// getLock answers q with the first lock that would conflict, or with
// type Unlock. The holder's pid is not known (open file description locks
// have none) and is reported as 0.
func getLock(fd int, q *lockQuery) error {
	fl, err := flockOf(p9.LockType(q.typ), q.start, q.length)
	if err != nil {
		return err
	}
	if fl.Type == unix.F_UNLCK {
		return linux.EINVAL // as fcntl(F_GETLK) with F_UNLCK
	}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &fl); err != nil {
		return errno(err)
	}
	q.answered = true
	if fl.Type == unix.F_UNLCK {
		q.result.typ = uint8(p9.Unlock)
		q.result.start, q.result.length = q.start, q.length
		return nil
	}
	q.result.typ = uint8(p9.ReadLock)
	if fl.Type == unix.F_WRLCK {
		q.result.typ = uint8(p9.WriteLock)
	}
	q.result.start, q.result.length = uint64(fl.Start), uint64(fl.Len)
	return nil
}

// flockOf converts a 9P lock range (length 0 = to the end of the file).
func flockOf(typ p9.LockType, start, length uint64) (unix.Flock_t, error) {
	fl := unix.Flock_t{Whence: seekSet}
	switch typ {
	case p9.ReadLock:
		fl.Type = unix.F_RDLCK
	case p9.WriteLock:
		fl.Type = unix.F_WRLCK
	case p9.Unlock:
		fl.Type = unix.F_UNLCK
	default:
		return fl, linux.EINVAL
	}
	if start > math.MaxInt64 || length > math.MaxInt64 || start+length > math.MaxInt64 {
		return fl, linux.EINVAL
	}
	fl.Start, fl.Len = int64(start), int64(length)
	return fl, nil
}

const seekSet = 0 // io.SeekStart, as the int16 Flock_t.Whence wants
