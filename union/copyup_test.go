package union

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCopyUpOnWriteKeepsMetadata(t *testing.T) {
	tu := newUnion(t, nil, []string{"dir/f=hello"})
	lowerF := filepath.Join(tu.lowers[0], "dir/f")
	must(t, os.Chown(lowerF, 1234, 5678))
	must(t, unix.Chmod(lowerF, 0o4751))
	must(t, unix.Setxattr(lowerF, "user.note", []byte("kept"), 0))
	must(t, unix.Setxattr(lowerF, "trusted.overlay.opaque", []byte("y"), 0))
	ts := []unix.Timespec{{Sec: 1000, Nsec: 123456789}, {Sec: 2000, Nsec: 987654321}}
	must(t, unix.UtimesNano(lowerF, ts))
	tu.setupDone(t)

	n := tu.mustWalk(t, "dir/f")
	before, err := n.Attr()
	must(t, err)
	f, err := n.Open(unix.O_WRONLY | unix.O_APPEND)
	must(t, err)
	_, err = f.WriteAt([]byte(" world"), 0)
	must(t, err)
	must(t, f.Close())

	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(tu.upper, "dir/f"), &st))
	if st.Uid != 1234 || st.Gid != 5678 || st.Mode&0o7777 != 0o4751 {
		t.Errorf("copy has uid %d gid %d mode %o", st.Uid, st.Gid, st.Mode&0o7777)
	}
	if v, err := getXattrPath(filepath.Join(tu.upper, "dir/f"), "user.note", unix.Lgetxattr); err != nil || string(v) != "kept" {
		t.Errorf("user xattr not copied: %q %v", v, err)
	}
	if _, err := getXattrPath(filepath.Join(tu.upper, "dir/f"), "trusted.overlay.opaque", unix.Lgetxattr); err == nil {
		t.Errorf("a lower's private overlay xattr was copied up")
	}
	if got := tu.read(t, "dir/f"); got != "hello world" {
		t.Errorf("content %q", got)
	}
	after, err := n.Attr()
	must(t, err)
	if after.ID != before.ID {
		t.Errorf("id changed on copy-up: %x -> %x", before.ID, after.ID)
	}
	again := tu.mustWalk(t, "dir/f")
	a2, err := again.Attr()
	must(t, err)
	if a2.ID != before.ID {
		t.Errorf("id after fresh lookup %x, want %x", a2.ID, before.ID)
	}
	// The parent was copied up with its metadata too, not made opaque.
	var dst unix.Stat_t
	must(t, unix.Lstat(filepath.Join(tu.upper, "dir"), &dst))
	if dst.Mode&0o777 != 0o755 {
		t.Errorf("parent dir mode %o", dst.Mode&0o777)
	}
}

func TestCopyUpKeepsTimesNanoseconds(t *testing.T) {
	tu := newUnion(t, nil, []string{"f=x"})
	ts := []unix.Timespec{{Sec: 1000, Nsec: 123456789}, {Sec: 2000, Nsec: 987654321}}
	must(t, unix.UtimesNano(filepath.Join(tu.lowers[0], "f"), ts))
	tu.setupDone(t)
	n := tu.mustWalk(t, "f")
	must(t, n.SetXattr("user.x", []byte("1"), 0))
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(tu.upper, "f"), &st))
	if st.Mtim != ts[1] {
		t.Errorf("mtime %v, want %v", st.Mtim, ts[1])
	}
}

func TestCopyUpKeepsHoles(t *testing.T) {
	tu := newUnion(t, nil, nil)
	p := filepath.Join(tu.lowers[0], "sparse")
	fh, err := os.Create(p)
	must(t, err)
	_, err = fh.WriteAt([]byte("head"), 0)
	must(t, err)
	_, err = fh.WriteAt([]byte("tail"), 64<<20)
	must(t, err)
	must(t, fh.Truncate(128<<20))
	must(t, fh.Close())
	tu.setupDone(t)

	n := tu.mustWalk(t, "sparse")
	f, err := n.Open(unix.O_RDWR)
	must(t, err)
	buf := make([]byte, 4)
	_, err = f.ReadAt(buf, 64<<20)
	must(t, err)
	if string(buf) != "tail" {
		t.Errorf("read %q at 64M", buf)
	}
	f.Close()
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(tu.upper, "sparse"), &st))
	if st.Size != 128<<20 {
		t.Errorf("size %d", st.Size)
	}
	if st.Blocks*512 > 8<<20 {
		t.Errorf("copy uses %d bytes: holes were filled", st.Blocks*512)
	}
}

func TestConcurrentFirstWritesCopyOnce(t *testing.T) {
	tu := newUnion(t, nil, []string{"f=0123456789"})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			n, err := tu.walk(t, "f")
			if err != nil {
				t.Error(err)
				return
			}
			defer n.Release()
			f, err := n.Open(unix.O_WRONLY)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte{'a' + byte(i)}, int64(i)); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if got := tu.read(t, "f"); got != "abcdefgh89" {
		t.Fatalf("content %q: a write went to a copy that was replaced", got)
	}
	ents, err := os.ReadDir(filepath.Join(tu.work, "work"))
	must(t, err)
	if len(ents) != 0 {
		t.Errorf("work dir not clean: %v", ents)
	}
}

func TestCopyUpSymlinkAndFifo(t *testing.T) {
	tu := newUnion(t, nil, []string{"l->/etc/passwd"})
	must(t, unix.Mkfifo(filepath.Join(tu.lowers[0], "fifo"), 0o640))
	tu.setupDone(t)
	for _, name := range []string{"l", "fifo"} {
		n := tu.mustWalk(t, name)
		must(t, n.SetAttr(SetAttr{SetUID: true, UID: 42, SetGID: true, GID: 43}))
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(tu.upper, name), &st))
		if st.Uid != 42 || st.Gid != 43 {
			t.Errorf("%s: owner %d:%d", name, st.Uid, st.Gid)
		}
	}
	target, err := os.Readlink(filepath.Join(tu.upper, "l"))
	must(t, err)
	if target != "/etc/passwd" {
		t.Errorf("link target %q", target)
	}
}

func TestReadOnlyUnionRefusesWrites(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	layout(t, dir, "f=1", "d/")
	u, err := Open(Options{Lowers: []string{dir}})
	must(t, err)
	defer u.Close()
	root, err := u.Root()
	must(t, err)
	defer root.Release()
	f, err := root.Lookup("f")
	must(t, err)
	defer f.Release()
	_, err = f.Open(unix.O_WRONLY)
	wantErrno(t, err, unix.EROFS)
	_, _, err = root.Create("new", unix.O_RDWR, 0o644, Owner{})
	wantErrno(t, err, unix.EROFS)
	wantErrno(t, root.Unlink("f", false), unix.EROFS)
	wantErrno(t, f.SetAttr(SetAttr{SetMode: true, Mode: 0o600}), unix.EROFS)
}

// chown on the host drops file capabilities: a copy-up must chown before
// it copies xattrs, or every touch of ping would break it.
func TestCopyUpKeepsFileCapabilities(t *testing.T) {
	tu := newUnion(t, nil, []string{"ping=binary"})
	lowerPing := filepath.Join(tu.lowers[0], "ping")
	// security.capability v2 for cap_net_raw+ep, as setcap writes it.
	capv2 := []byte{0x00, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}
	must(t, os.Chown(lowerPing, 0, 4321)) // before: chown drops capabilities
	must(t, unix.Setxattr(lowerPing, "security.capability", capv2, 0))
	tu.setupDone(t)
	n := tu.mustWalk(t, "ping")
	must(t, n.SetAttr(SetAttr{Mtime: TimeNow}))
	v, err := getXattrPath(filepath.Join(tu.upper, "ping"), "security.capability", unix.Lgetxattr)
	if err != nil || string(v) != string(capv2) {
		t.Fatalf("capability after copy-up: %x %v", v, err)
	}
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(tu.upper, "ping"), &st))
	if st.Gid != 4321 {
		t.Fatalf("gid %d", st.Gid)
	}
}

// Only the union's own leftovers are cleaned from WORKDIR/work at start: a
// workdir given by mistake must not lose a user's files.
func TestOpenCleansOnlyWorkLeftovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	base := t.TempDir()
	up, work := filepath.Join(base, "up"), filepath.Join(base, "wd")
	must(t, os.MkdirAll(filepath.Join(work, "work", "#1f", "inner"), 0o755))
	must(t, os.WriteFile(filepath.Join(work, "work", "#2a"), nil, 0o644))
	must(t, os.WriteFile(filepath.Join(work, "work", "thesis.tex"), []byte("precious"), 0o644))
	must(t, os.Mkdir(up, 0o755))
	u, err := Open(Options{Upper: up, Workdir: work})
	must(t, err)
	u.Close()
	ents, err := os.ReadDir(filepath.Join(work, "work"))
	must(t, err)
	if len(ents) != 1 || ents[0].Name() != "thesis.tex" {
		t.Fatalf("work dir after start: %v", ents)
	}
}

// A Node held across the deletion of its object and the creation of a new
// one under the same name keeps its own object: it never writes into the
// newcomer.
func TestHeldNodeDoesNotAdoptANewcomer(t *testing.T) {
	tu := newUnion(t, nil, []string{"f=old"})
	held := tu.mustWalk(t, "f")
	root := tu.mustWalk(t, "/")
	must(t, root.Unlink("f", false))
	n, f, err := root.Create("f", unix.O_RDWR, 0o644, Owner{})
	must(t, err)
	_, err = f.WriteAt([]byte("NEW"), 0)
	must(t, err)
	f.Close()
	n.Release()
	if _, err := held.Open(unix.O_WRONLY); err == nil {
		t.Fatal("a stale node opened the new file for writing")
	}
	if got := tu.read(t, "f"); got != "NEW" {
		t.Fatalf("new file = %q", got)
	}
}

// Opening with O_TRUNC (or truncating to 0) copies up no data: it would be
// thrown away at once.
func TestTruncatingCopyUpCopiesNoData(t *testing.T) {
	tu := newUnion(t, nil, []string{"a=0123456789", "b=0123456789"})
	a := tu.mustWalk(t, "a")
	f, err := a.Open(unix.O_WRONLY | unix.O_TRUNC)
	must(t, err)
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(tu.upper, "a"), &st))
	f.Close()
	if st.Size != 0 {
		t.Fatalf("O_TRUNC copy-up has size %d", st.Size)
	}
	b := tu.mustWalk(t, "b")
	must(t, b.SetAttr(SetAttr{SetSize: true, Size: 0}))
	if got := tu.read(t, "b"); got != "" {
		t.Fatalf("b = %q after truncate", got)
	}
	must(t, b.SetAttr(SetAttr{SetSize: true, Size: 3}))
	if got := tu.read(t, "b"); got != "\x00\x00\x00" {
		t.Fatalf("b = %q after growing", got)
	}
}
