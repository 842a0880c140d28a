package p9srv

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/union9p/union9p/test/p9wire"
)

// What the Linux client sends for flock(LOCK_EX) and fcntl(F_GETLK) on a
// file opened read-only, from two guests.
func TestWriteLockOnReadOnlyOpenAndUnlockTypedGetlock(t *testing.T) {
	ts := startServer(t, serverOptions{})
	a := ts.dial(t, 0)
	b := ts.dial(t, 0)
	for _, c := range []*p9wire.Client{a, b} {
		_, err := c.Walk(0, 1, "file")
		must(t, err)
		_, _, err = c.Lopen(1, p9wire.ORdonly)
		must(t, err)
	}
	st, err := a.Lock(1, p9wire.Lock{Type: p9wire.LockWrite, ProcID: 7, ClientID: "guest"})
	must(t, err)
	if st != p9wire.LockSuccess {
		t.Fatalf("write lock through a read-only open: status %d", st)
	}
	// Same pid and client name, other connection: another guest.
	st, err = b.Lock(1, p9wire.Lock{Type: p9wire.LockRead, ProcID: 7, ClientID: "guest"})
	must(t, err)
	if st != p9wire.LockBlocked {
		t.Fatalf("another guest's lock: status %d, want blocked", st)
	}
	// Linux asks with type unlock when it holds no lock itself.
	g, err := b.Getlock(1, p9wire.Lock{Type: p9wire.LockUnlock, ProcID: 8, ClientID: "guest"})
	must(t, err)
	if g.Type != p9wire.LockWrite || g.ProcID != 7 {
		t.Fatalf("getlock reports %+v, want the write lock of pid 7", g)
	}
	// The owner's own locks never conflict, and a partial unlock splits.
	st, err = a.Lock(1, p9wire.Lock{Type: p9wire.LockRead, Start: 0, Length: 100, ProcID: 7, ClientID: "guest"})
	must(t, err)
	if st != p9wire.LockSuccess {
		t.Fatalf("owner relocking its own range: status %d", st)
	}
	st, err = a.Lock(1, p9wire.Lock{Type: p9wire.LockUnlock, Start: 10, Length: 10, ProcID: 7, ClientID: "guest"})
	must(t, err)
	if st != p9wire.LockSuccess {
		t.Fatalf("partial unlock: status %d", st)
	}
	for _, probe := range []struct {
		start uint64
		free  bool
	}{{5, false}, {15, true}, {50, false}, {500, false}} {
		st, err = b.Lock(1, p9wire.Lock{Type: p9wire.LockWrite, Start: probe.start, Length: 1, ProcID: 9, ClientID: "other"})
		must(t, err)
		if (st == p9wire.LockSuccess) != probe.free {
			t.Errorf("byte %d: status %d, want free=%v", probe.start, st, probe.free)
		}
		if st == p9wire.LockSuccess {
			b.Lock(1, p9wire.Lock{Type: p9wire.LockUnlock, Start: probe.start, Length: 1, ProcID: 9, ClientID: "other"})
		}
	}
}

func TestAttachWithUnknownUserIsNobody(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c, err := p9wire.Dial("unix", ts.sock, 64<<10)
	must(t, err)
	defer c.Close()
	_, err = c.Attach(0, "no-such-user-here", "", 0xFFFFFFFF)
	must(t, err)
	_, err = c.Mkdir(0, "made-by-nobody", 0o755, 65534)
	must(t, err)
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(ts.upper, "made-by-nobody"), &st))
	if st.Uid != 65534 {
		t.Fatalf("owned by %d, want nobody", st.Uid)
	}
}
