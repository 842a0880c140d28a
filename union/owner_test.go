package union

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// withOwnership reopens tu's union with the given ownership mode.
func withOwnership(t *testing.T, tu *testUnion, o Ownership) {
	t.Helper()
	tu.Union.Close()
	u, err := Open(Options{Lowers: tu.lowers, Upper: tu.upper, Workdir: tu.work, Ownership: o})
	must(t, err)
	tu.Union = u
}

// TestOwnershipPolicy: what a client sets or creates is what it sees, in
// both ownership modes, for the objects that keep mapped xattrs and for
// those that cannot (their host owner and mode are what is shown, so the
// host mode gets no extra bits), and a copy-up changes none of it.
func TestOwnershipPolicy(t *testing.T) {
	for _, mode := range []Ownership{Passthrough, MappedXattr} {
		t.Run(map[Ownership]string{Passthrough: "passthrough", MappedXattr: "mapped"}[mode], func(t *testing.T) {
			tu := newUnion(t, nil, []string{"d/f=data"})
			must(t, os.Chown(filepath.Join(tu.lowers[0], "d/f"), 1234, 4321))
			must(t, os.Chmod(filepath.Join(tu.lowers[0], "d/f"), 0o444))
			tu.setupDone(t)
			withOwnership(t, tu, mode)
			d := tu.mustWalk(t, "/d")
			o := Owner{UID: 1000, GID: 1001}

			fifo, err := d.Mknod("p", unix.S_IFIFO|0o444, 0, o)
			must(t, err)
			defer fifo.Release()
			var st unix.Stat_t
			must(t, unix.Lstat(filepath.Join(tu.upper, "d/p"), &st))
			if st.Mode&0o7777 != 0o444 {
				t.Errorf("fifo made 0444 has host mode %o", st.Mode&0o7777)
			}
			a, err := fifo.Attr()
			must(t, err)
			if a.Mode&0o7777 != 0o444 || a.UID != 1000 {
				t.Errorf("fifo shows mode %o uid %d; want 0444 uid 1000", a.Mode&0o7777, a.UID)
			}

			c, f, err := d.Create("g", unix.O_RDWR, 0o400, o)
			must(t, err)
			f.Close()
			defer c.Release()
			a, err = c.Attr()
			must(t, err)
			if a.Mode&0o7777 != 0o400 || a.UID != 1000 || a.GID != 1001 {
				t.Errorf("created file shows %o %d:%d; want 0400 1000:1001", a.Mode&0o7777, a.UID, a.GID)
			}
			must(t, unix.Lstat(filepath.Join(tu.upper, "d/g"), &st))
			if mode == MappedXattr && (st.Mode&0o600 != 0o600 || st.Uid != 0) {
				t.Errorf("mapped: host file is %o owned by %d; want owner access, the server's", st.Mode&0o7777, st.Uid)
			}
			if mode == Passthrough && (st.Mode&0o7777 != 0o400 || st.Uid != 1000) {
				t.Errorf("passthrough: host file is %o owned by %d", st.Mode&0o7777, st.Uid)
			}

			// A copy-up (by an xattr change) keeps what the lower showed.
			n := tu.mustWalk(t, "/d/f")
			must(t, n.SetXattr("user.k", []byte("v"), 0))
			a, err = n.Attr()
			must(t, err)
			if a.Mode&0o7777 != 0o444 || a.UID != 1234 || a.GID != 4321 {
				t.Errorf("copied-up file shows %o %d:%d; want 0444 1234:4321", a.Mode&0o7777, a.UID, a.GID)
			}
			// A client's chown and chmod.
			must(t, n.SetAttr(SetAttr{SetUID: true, UID: 7, SetMode: true, Mode: 0o4750}))
			a, err = n.Attr()
			must(t, err)
			if a.Mode&0o7777 != 0o4750 || a.UID != 7 || a.GID != 4321 {
				t.Errorf("after chown 7 and chmod 4750: %o %d:%d", a.Mode&0o7777, a.UID, a.GID)
			}
		})
	}
}
