package union

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The layer lock. Two writers of one upper layer corrupt each other: a
// second server cleans the work directory at start and so deletes the
// first one's copy-ups in flight, and both would create and rename the
// same names. overlayfs refuses a second mount with "upperdir/workdir is
// in use by another mount"; union9p does the same between its own
// processes (servers and the layer tools) with an exclusive flock(2) on a
// descriptor of the upper directory and one of the work directory, held
// for the union's whole life. flock on the directories themselves writes
// nothing into the layers (a lock file in the upper would be seen by
// clients) and is released by the kernel when the process dies, so a
// crash never leaves a stale lock. The holder's pid is read from
// /proc/locks for the message.
//
// The lock is advisory: it keeps union9p processes apart, not a kernel
// overlay mount of the same directories.

// LayerLock is an exclusive lock on an upper directory and its work
// directory. Release it once; it is not safe for concurrent use.
type LayerLock struct {
	fds []int
}

// InUseError says that another process holds the lock on a layer.
type InUseError struct {
	Role string // "upperdir" or "workdir"
	Dir  string
	PID  int // 0 when unknown
}

func (e *InUseError) Error() string {
	who := "another union9p"
	if e.PID > 0 {
		who += " (pid " + strconv.Itoa(e.PID) + ")"
	}
	return fmt.Sprintf("%s %q is in use by %s; stop it first", e.Role, e.Dir, who)
}

// LockLayers takes the exclusive lock on upper and workdir (either may be
// empty) without waiting. When another process holds it, the error is an
// *InUseError naming the directory and, where /proc/locks tells, the pid
// of the holder. Nothing is written to either directory.
func LockLayers(upper, workdir string) (*LayerLock, error) {
	l := &LayerLock{}
	for _, d := range []struct{ role, dir string }{{"upperdir", upper}, {"workdir", workdir}} {
		if d.dir == "" {
			continue
		}
		if err := l.lock(d.role, d.dir); err != nil {
			l.Release()
			return nil, err
		}
	}
	return l, nil
}

func (l *LayerLock) lock(role, dir string) error {
	// flock needs a descriptor that is not O_PATH.
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s %q: %w", role, dir, err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if err == nil {
		l.fds = append(l.fds, fd)
		return nil
	}
	defer unix.Close(fd)
	if err == unix.EWOULDBLOCK {
		var st unix.Stat_t
		pid := 0
		if unix.Fstat(fd, &st) == nil {
			pid = flockHolder(st.Dev, st.Ino)
		}
		return &InUseError{Role: role, Dir: dir, PID: pid}
	}
	return fmt.Errorf("%s %q: lock: %w", role, dir, err)
}

// Release drops the lock. A nil lock is released without effect.
func (l *LayerLock) Release() {
	if l == nil {
		return
	}
	for _, fd := range l.fds {
		unix.Close(fd) // closing the last descriptor drops the flock
	}
	l.fds = nil
}

// flockHolder finds in /proc/locks the pid holding a FLOCK on the inode
// (dev, ino); 0 if none is listed. Lines read like
// "1: FLOCK  ADVISORY  WRITE 1234 fd:01:56789 0 EOF".
func flockHolder(dev, ino uint64) int {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer f.Close()
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(dev), unix.Minor(dev), ino)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// "->" marks a waiter, which adds a field after the number.
		if len(fields) > 1 && fields[1] == "->" {
			continue
		}
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil {
			return pid
		}
	}
	return 0
}

// IsInUse reports whether err says that a layer is locked by another
// process.
func IsInUse(err error) bool {
	var e *InUseError
	return errors.As(err, &e)
}
