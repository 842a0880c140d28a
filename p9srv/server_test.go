package p9srv

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/union9p/union9p/test/p9wire"
	"golang.org/x/sys/unix"
)

// Requests below are sent the way Linux sends them: Twalk of one name, then
// Tgetattr; Tlopen with P9_DOTL flags; Treaddir with a byte count.

func TestWalkGetattrRead(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.dial(t, 0)
	qids, err := c.Walk(0, 1, "file")
	must(t, err)
	a, err := c.Getattr(1, p9wire.GetattrBasic)
	must(t, err)
	if a.Mode != unix.S_IFREG|0o644 || a.Size != 11 || a.QID.Path != qids[0].Path || a.QID.Type != 0 {
		t.Errorf("getattr file: %+v", a)
	}
	if _, _, err := c.Lopen(1, p9wire.ORdonly|p9wire.ONoatime|p9wire.OLargefile); err != nil {
		t.Fatal(err)
	}
	data, err := c.Read(1, 0, 4096)
	must(t, err)
	if string(data) != "lower data\n" {
		t.Errorf("read %q", data)
	}
	must(t, c.Clunk(1))

	d, err := c.Walk(0, 2, "dir")
	must(t, err)
	if d[0].Type != 0x80 {
		t.Errorf("dir qid type %#x", d[0].Type)
	}
	l, err := c.Walk(0, 3, "link")
	must(t, err)
	if l[0].Type != 0x02 {
		t.Errorf("symlink qid type %#x", l[0].Type)
	}
	target, err := c.Readlink(3)
	must(t, err)
	if target != "file" {
		t.Errorf("readlink %q", target)
	}
}

func TestWriteCopiesUpAndLowerStays(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.dial(t, 0)
	_, err := c.Walk(0, 1, "file")
	must(t, err)
	_, _, err = c.Lopen(1, p9wire.ORdwr)
	must(t, err)
	n, err := c.Write(1, 6, []byte("DATA"))
	must(t, err)
	if n != 4 {
		t.Fatalf("wrote %d", n)
	}
	must(t, c.Fsync(1, false))
	got, err := os.ReadFile(filepath.Join(ts.upper, "file"))
	must(t, err)
	if string(got) != "lower DATA\n" {
		t.Errorf("upper file %q", got)
	}
	// O_APPEND: the host appends whatever offset the client sends.
	_, err = c.Walk(0, 2, "file")
	must(t, err)
	_, _, err = c.Lopen(2, p9wire.OWronly|p9wire.OAppend)
	must(t, err)
	_, err = c.Write(2, 0, []byte("tail"))
	must(t, err)
	got, _ = os.ReadFile(filepath.Join(ts.upper, "file"))
	if string(got) != "lower DATA\ntail" {
		t.Errorf("after append %q", got)
	}
	// O_TRUNC and O_DIRECT (which must not reach the host: the buffers are
	// not aligned).
	_, err = c.Walk(0, 3, "file")
	must(t, err)
	_, _, err = c.Lopen(3, p9wire.ORdwr|p9wire.OTrunc|p9wire.ODirect)
	must(t, err)
	_, err = c.Write(3, 0, []byte("x"))
	must(t, err)
	got, _ = os.ReadFile(filepath.Join(ts.upper, "file"))
	if string(got) != "x" {
		t.Errorf("after trunc %q", got)
	}
}

func TestLargeMsizeReadWrite(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c, err := p9wire.Dial("unix", ts.sock, 8<<20)
	must(t, err)
	defer c.Close()
	if c.Msize() != DefaultMaxMsize {
		t.Errorf("msize %d, want capped at %d", c.Msize(), DefaultMaxMsize)
	}
	_, err = c.Attach(0, "", "", 0)
	must(t, err)
	_, err = c.Walk(0, 1)
	must(t, err)
	_, _, err = c.Lcreate(1, "big", p9wire.ORdwr, 0o644, 0)
	must(t, err)
	payload := bytes.Repeat([]byte("0123456789abcdef"), int(c.Msize()-64)/16)
	n, err := c.Write(1, 0, payload)
	must(t, err)
	if int(n) != len(payload) {
		t.Fatalf("wrote %d of %d", n, len(payload))
	}
	back, err := c.Read(1, 0, c.Msize()-11)
	must(t, err)
	if !bytes.Equal(back, payload) {
		t.Errorf("read back %d bytes, differ", len(back))
	}
}

func TestMsizeCappedByConfig(t *testing.T) {
	ts := startServer(t, serverOptions{maxMsize: 65536})
	c, err := p9wire.Dial("unix", ts.sock, 1<<20)
	must(t, err)
	defer c.Close()
	if c.Msize() != 65536 {
		t.Errorf("msize %d, want 65536", c.Msize())
	}
}

func TestCreateOwnedByAttachUID(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.dial(t, 1000)
	root := ts.dial(t, 0)

	_, err := c.Walk(0, 1)
	must(t, err)
	_, _, err = c.Lcreate(1, "mine", p9wire.ORdwr, 0o640, 1001)
	must(t, err)
	_, err = c.Mkdir(0, "mydir", 0o750, 1001)
	must(t, err)
	_, err = c.Symlink(0, "mylink", "mine", 1001)
	must(t, err)
	_, err = c.Mknod(0, "myfifo", unix.S_IFIFO|0o600, 0, 0, 1001)
	must(t, err)
	_, err = root.Mkdir(0, "rootdir", 0o755, 0)
	must(t, err)

	for name, want := range map[string][2]uint32{
		"mine": {1000, 1001}, "mydir": {1000, 1001}, "mylink": {1000, 1001},
		"myfifo": {1000, 1001}, "rootdir": {0, 0},
	} {
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(ts.upper, name), &st))
		if st.Uid != want[0] || st.Gid != want[1] {
			t.Errorf("%s owned by %d:%d, want %d:%d", name, st.Uid, st.Gid, want[0], want[1])
		}
	}
	// Seen as such through another connection.
	_, err = root.Walk(0, 5, "mine")
	must(t, err)
	a, err := root.Getattr(5, p9wire.GetattrBasic)
	must(t, err)
	if a.UID != 1000 || a.GID != 1001 || a.Mode != unix.S_IFREG|0o640 {
		t.Errorf("getattr mine: uid %d gid %d mode %o", a.UID, a.GID, a.Mode)
	}
}

func TestSquashOwnership(t *testing.T) {
	uid, gid := uint32(4242), uint32(4343)
	ts := startServer(t, serverOptions{squashUID: &uid, squashGID: &gid})
	c := ts.dial(t, 0)
	_, err := c.Mkdir(0, "d", 0o755, 0)
	must(t, err)
	_, err = c.Walk(0, 1, "file")
	must(t, err)
	must(t, c.Setattr(1, p9wire.SetAttr{Valid: p9wire.SetattrUID | p9wire.SetattrGID, UID: 0, GID: 0}))
	for _, name := range []string{"d", "file"} {
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(ts.upper, name), &st))
		if st.Uid != uid || st.Gid != gid {
			t.Errorf("%s owned by %d:%d, want squashed %d:%d", name, st.Uid, st.Gid, uid, gid)
		}
	}
	// An untrusted client may not plant host device nodes in the upper.
	for _, mode := range []uint32{unix.S_IFBLK | 0o666, unix.S_IFCHR | 0o666} {
		if _, err := c.Mknod(0, "dev", mode, 1, 1, 0); err != unix.EPERM {
			t.Errorf("squashed mknod %o: %v, want EPERM", mode&unix.S_IFMT, err)
		}
	}
	if _, err := c.Mknod(0, "fifo", unix.S_IFIFO|0o644, 0, 0, 0); err != nil {
		t.Errorf("squashed mkfifo: %v", err)
	}
}

func TestSetuidSetgidKept(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.dial(t, 0)
	_, err := c.Walk(0, 1)
	must(t, err)
	_, _, err = c.Lcreate(1, "suid", p9wire.OWronly, 0o4755, 0)
	must(t, err)
	_, err = c.Mkdir(0, "sgid", 0o2775, 0)
	must(t, err)
	_, err = c.Walk(0, 2, "file")
	must(t, err)
	must(t, c.Setattr(2, p9wire.SetAttr{Valid: p9wire.SetattrMode | p9wire.SetattrCtime, Mode: 0o4755}))
	_, err = c.Walk(0, 3, "dir")
	must(t, err)
	must(t, c.Setattr(3, p9wire.SetAttr{Valid: p9wire.SetattrMode, Mode: 0o3777}))

	for name, want := range map[string]uint32{"suid": 0o4755, "sgid": 0o2775, "file": 0o4755, "dir": 0o3777} {
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(ts.upper, name), &st))
		if st.Mode&0o7777 != want {
			t.Errorf("%s: host mode %o, want %o", name, st.Mode&0o7777, want)
		}
	}
	a, err := c.Getattr(2, p9wire.GetattrBasic)
	must(t, err)
	if a.Mode != unix.S_IFREG|0o4755 {
		t.Errorf("getattr after chmod 4755: %o", a.Mode)
	}
}

func TestSetattrSizeOwnerTimes(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.dial(t, 0)
	_, err := c.Walk(0, 1, "file")
	must(t, err)
	must(t, c.Setattr(1, p9wire.SetAttr{Valid: p9wire.SetattrSize, Size: 5}))
	must(t, c.Setattr(1, p9wire.SetAttr{Valid: p9wire.SetattrUID | p9wire.SetattrGID, UID: 123, GID: 456}))
	must(t, c.Setattr(1, p9wire.SetAttr{
		Valid:    p9wire.SetattrAtime | p9wire.SetattrAtimeSet | p9wire.SetattrMtime | p9wire.SetattrMtimeSet,
		AtimeSec: 1000000000, AtimeNsec: 123456789, MtimeSec: 1500000000, MtimeNsec: 987654321,
	}))
	a, err := c.Getattr(1, p9wire.GetattrBasic)
	must(t, err)
	if a.Size != 5 || a.UID != 123 || a.GID != 456 {
		t.Errorf("size/owner: %d %d:%d", a.Size, a.UID, a.GID)
	}
	if a.AtimeSec != 1000000000 || a.AtimeNsec != 123456789 || a.MtimeSec != 1500000000 || a.MtimeNsec != 987654321 {
		t.Errorf("times: atime %d.%d mtime %d.%d", a.AtimeSec, a.AtimeNsec, a.MtimeSec, a.MtimeNsec)
	}
	// UTIME_NOW for mtime (no "set" bit), UTIME_OMIT for atime (not named).
	before := time.Now().Add(-time.Second).Unix()
	must(t, c.Setattr(1, p9wire.SetAttr{Valid: p9wire.SetattrMtime | p9wire.SetattrCtime}))
	a, err = c.Getattr(1, p9wire.GetattrBasic)
	must(t, err)
	if int64(a.MtimeSec) < before {
		t.Errorf("mtime not set to now: %d < %d", a.MtimeSec, before)
	}
	if a.AtimeSec != 1000000000 || a.AtimeNsec != 123456789 {
		t.Errorf("atime changed though omitted: %d.%d", a.AtimeSec, a.AtimeNsec)
	}
}

func TestReaddirSmallChunks(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.dial(t, 0)
	// Entries in the lower (file, dir, link) and the upper (created here),
	// and one lower entry deleted.
	want := []string{".", "..", "dir", "link"}
	for i := range 40 {
		name := "created-" + itoa(uint32(i))
		_, err := c.Mknod(0, name, unix.S_IFREG|0o644, 0, 0, 0)
		must(t, err)
		want = append(want, name)
	}
	must(t, c.Unlinkat(0, "file", 0))
	sort.Strings(want)

	for _, count := range []uint32{40, 64, 100, 8192} {
		_, err := c.Walk(0, 1)
		must(t, err)
		_, _, err = c.Lopen(1, p9wire.ORdonly|p9wire.ODirectory)
		must(t, err)
		var names []string
		types := map[string]uint8{}
		var off uint64
		for range 1000 {
			ents, err := c.Readdir(1, off, count)
			must(t, err)
			if len(ents) == 0 {
				break
			}
			for _, e := range ents {
				names = append(names, e.Name)
				types[e.Name] = e.Type
			}
			off = ents[len(ents)-1].Offset
		}
		must(t, c.Clunk(1))
		sort.Strings(names)
		if !slices.Equal(names, want) {
			t.Errorf("count %d: listed %v\nwant %v", count, names, want)
		}
		if types["dir"] != unix.DT_DIR || types["link"] != unix.DT_LNK || types["created-0"] != unix.DT_REG {
			t.Errorf("count %d: d_types %v", count, types)
		}
	}
	// A count too small for one entry is an error, not an empty directory.
	_, err := c.Walk(0, 1)
	must(t, err)
	_, _, err = c.Lopen(1, p9wire.ORdonly)
	must(t, err)
	_, err = c.Readdir(1, 0, 10)
	wantErrno(t, "readdir with 10 bytes", err, unix.EINVAL)
}

func TestNamespaceOperations(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.dial(t, 0)
	_, err := c.Walk(0, 1, "dir")
	must(t, err)
	_, err = c.Walk(0, 2, "file")
	must(t, err)

	must(t, c.Link(1, 2, "hardlink"))
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(ts.upper, "dir", "hardlink"), &st))
	if st.Nlink != 2 {
		t.Errorf("hard link: nlink %d", st.Nlink)
	}
	must(t, c.Renameat(0, "file", 1, "renamed"))
	if _, err := c.Walk(0, 3, "file"); err == nil {
		t.Error("old name still there after rename")
	}
	_, err = c.Walk(1, 3, "renamed")
	must(t, err)
	must(t, c.Clunk(3))
	// The fid walked to the old name follows the object.
	a, err := c.Getattr(2, p9wire.GetattrBasic)
	must(t, err)
	if a.Size != 11 {
		t.Errorf("renamed file size %d", a.Size)
	}
	must(t, c.Unlinkat(1, "a", 0))
	if _, err := c.Walk(1, 3, "a"); err == nil {
		t.Error("unlinked name still found")
	}
	if _, err := os.Stat(filepath.Join(ts.lower, "dir", "a")); err != nil {
		t.Errorf("lower file gone: %v", err)
	}
}

func TestErrnos(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.dial(t, 0)
	_, err := c.Walk(0, 1, "dir")
	must(t, err)
	_, err = c.Walk(0, 2, "file")
	must(t, err)
	_, err = c.Mkdir(0, "newdir", 0o755, 0)
	must(t, err)
	_, err = c.Mkdir(0, "newdir2", 0o755, 0)
	must(t, err)
	_, err = c.Mknod(0, "newdir2/../x", unix.S_IFREG, 0, 0, 0)
	wantErrno(t, "mknod name with slash", err, unix.EINVAL)

	tests := []struct {
		name string
		do   func() error
		want unix.Errno
	}{
		{"walk missing", func() error { _, err := c.Walk(0, 9, "missing"); return err }, unix.ENOENT},
		{"walk dotdot", func() error { _, err := c.Walk(0, 9, ".."); return err }, unix.EINVAL},
		{"walk slash", func() error { _, err := c.Walk(0, 9, "dir/a"); return err }, unix.EINVAL},
		{"walk long name", func() error { _, err := c.Walk(0, 9, string(bytes.Repeat([]byte("n"), 256))); return err }, unix.ENAMETOOLONG},
		{"mkdir existing", func() error { _, err := c.Mkdir(0, "dir", 0o755, 0); return err }, unix.EEXIST},
		{"create existing", func() error {
			if _, err := c.Walk(0, 9); err != nil {
				return err
			}
			defer c.Clunk(9)
			_, _, err := c.Lcreate(9, "file", p9wire.ORdwr, 0o644, 0)
			return err
		}, unix.EEXIST},
		{"rmdir not empty", func() error { return c.Unlinkat(0, "dir", p9wire.AtRemovedir) }, unix.ENOTEMPTY},
		{"unlink dir", func() error { return c.Unlinkat(0, "newdir", 0) }, unix.EISDIR},
		{"rmdir file", func() error { return c.Unlinkat(0, "file", p9wire.AtRemovedir) }, unix.ENOTDIR},
		{"rename dir over file", func() error { return c.Renameat(0, "newdir", 0, "file") }, unix.ENOTDIR},
		{"rename file over dir", func() error { return c.Renameat(0, "file", 0, "newdir") }, unix.EISDIR},
		{"rename merged dir", func() error { return c.Renameat(0, "dir", 0, "dir2") }, unix.EXDEV},
		{"open dir for write", func() error {
			if _, err := c.Walk(0, 9, "dir"); err != nil {
				return err
			}
			defer c.Clunk(9)
			_, _, err := c.Lopen(9, p9wire.OWronly)
			return err
		}, unix.EISDIR},
		{"set private xattr", func() error { return c.SetXattr(2, 9, "trusted.overlay.redirect", []byte("/etc"), 0) }, unix.EPERM},
		{"get missing xattr", func() error { _, err := c.GetXattr(2, 9, "user.missing"); return err }, unix.ENODATA},
		{"unknown fid", func() error { _, err := c.Getattr(77, p9wire.GetattrBasic); return err }, unix.EBADF},
		{"getlock on unopened fid", func() error { _, err := c.Getlock(2, p9wire.Lock{Type: p9wire.LockWrite}); return err }, unix.EBADF},
	}
	for _, tt := range tests {
		wantErrno(t, tt.name, tt.do(), tt.want)
	}
}

func TestXattrsAndACL(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.dial(t, 0)
	_, err := c.Walk(0, 1, "file")
	must(t, err)

	size, err := c.Xattrwalk(1, 2, "")
	must(t, err)
	must(t, c.Clunk(2))
	if size != 0 {
		t.Errorf("listing of a file without xattrs has size %d, want 0", size)
	}
	must(t, c.SetXattr(1, 2, "user.color", []byte("blue"), 0))
	v, err := c.GetXattr(1, 2, "user.color")
	must(t, err)
	if string(v) != "blue" {
		t.Errorf("user.color = %q", v)
	}
	wantErrno(t, "create existing xattr", c.SetXattr(1, 2, "user.color", []byte("red"), unix.XATTR_CREATE), unix.EEXIST)

	// A POSIX ACL: user::rw- user:1000:r-- group::r-- mask::r-- other::r--
	acl := posixACL([][3]uint32{{0x01, 6, 0xffffffff}, {0x02, 4, 1000}, {0x04, 4, 0xffffffff}, {0x10, 4, 0xffffffff}, {0x20, 4, 0xffffffff}})
	must(t, c.SetXattr(1, 2, "system.posix_acl_access", acl, 0))
	got, err := c.GetXattr(1, 2, "system.posix_acl_access")
	must(t, err)
	if !bytes.Equal(got, acl) {
		t.Errorf("ACL read back %x, want %x", got, acl)
	}
	hostACL := make([]byte, 256)
	n, err := unix.Lgetxattr(filepath.Join(ts.upper, "file"), "system.posix_acl_access", hostACL)
	must(t, err)
	if !bytes.Equal(hostACL[:n], acl) {
		t.Errorf("host ACL %x", hostACL[:n])
	}
	list, err := c.GetXattr(1, 2, "")
	must(t, err)
	if !bytes.Contains(list, []byte("user.color\x00")) || !bytes.Contains(list, []byte("system.posix_acl_access\x00")) || bytes.Contains(list, []byte("overlay")) {
		t.Errorf("xattr list %q", list)
	}
	// removexattr as Linux sends it: size 0 with XATTR_REPLACE.
	must(t, c.SetXattr(1, 2, "user.color", nil, unix.XATTR_REPLACE))
	_, err = c.GetXattr(1, 2, "user.color")
	wantErrno(t, "removed xattr", err, unix.ENODATA)
	// The fid that walked the xattrs keeps working (the library shares
	// its File with the xattr fids).
	_, err = c.Getattr(1, p9wire.GetattrBasic)
	must(t, err)
}

// posixACL encodes a system.posix_acl_access value (version 2 entries of
// tag[2] perm[2] id[4]).
func posixACL(entries [][3]uint32) []byte {
	e := new(p9wire.Encoder).U32(2)
	for _, x := range entries {
		e.U16(uint16(x[0])).U16(uint16(x[1])).U32(x[2])
	}
	return e.Bytes()
}

func TestLocksAcrossConnections(t *testing.T) {
	ts := startServer(t, serverOptions{})
	a := ts.dial(t, 0)
	b := ts.dial(t, 0)
	for _, c := range []*p9wire.Client{a, b} {
		_, err := c.Walk(0, 1, "file")
		must(t, err)
		_, _, err = c.Lopen(1, p9wire.ORdwr)
		must(t, err)
	}
	st, err := a.Lock(1, p9wire.Lock{Type: p9wire.LockWrite, Start: 10, Length: 100, ProcID: 11, ClientID: "a"})
	must(t, err)
	if st != p9wire.LockSuccess {
		t.Fatalf("first lock: status %d", st)
	}
	st, err = b.Lock(1, p9wire.Lock{Type: p9wire.LockRead, Start: 50, Length: 1, ProcID: 22, ClientID: "b"})
	must(t, err)
	if st != p9wire.LockBlocked {
		t.Errorf("conflicting lock: status %d, want blocked", st)
	}
	// A blocking request is answered at once, not waited on.
	st, err = b.Lock(1, p9wire.Lock{Type: p9wire.LockWrite, Flags: p9wire.LockFlagBlock, Start: 0, Length: 0, ProcID: 22, ClientID: "b"})
	must(t, err)
	if st != p9wire.LockBlocked {
		t.Errorf("blocking conflicting lock: status %d, want blocked", st)
	}
	g, err := b.Getlock(1, p9wire.Lock{Type: p9wire.LockWrite, Start: 0, Length: 0, ProcID: 22, ClientID: "b"})
	must(t, err)
	if g.Type != p9wire.LockWrite || g.Start != 10 || g.Length != 100 || g.ClientID != "b" {
		t.Errorf("getlock reports %+v, want the write lock 10+100", g)
	}
	g, err = b.Getlock(1, p9wire.Lock{Type: p9wire.LockWrite, Start: 200, Length: 5})
	must(t, err)
	if g.Type != p9wire.LockUnlock {
		t.Errorf("getlock outside the lock reports %+v, want unlocked", g)
	}
	st, err = a.Lock(1, p9wire.Lock{Type: p9wire.LockUnlock, Start: 0, Length: 0, ProcID: 11, ClientID: "a"})
	must(t, err)
	if st != p9wire.LockSuccess {
		t.Errorf("unlock: status %d", st)
	}
	st, err = b.Lock(1, p9wire.Lock{Type: p9wire.LockWrite, Start: 0, Length: 0, ProcID: 22, ClientID: "b"})
	must(t, err)
	if st != p9wire.LockSuccess {
		t.Errorf("lock after unlock: status %d", st)
	}
	// Clunking b's fid drops b's lock.
	must(t, b.Clunk(1))
	g, err = a.Getlock(1, p9wire.Lock{Type: p9wire.LockWrite})
	must(t, err)
	if g.Type != p9wire.LockUnlock {
		t.Errorf("lock survived clunk: %+v", g)
	}
}

func TestStatfsFsyncMknodFlush(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.dial(t, 0)
	s, err := c.Statfs(0)
	must(t, err)
	var want unix.Statfs_t
	must(t, unix.Statfs(ts.upper, &want))
	if s.Bsize != uint32(want.Bsize) || s.Blocks != want.Blocks || s.Namelen != uint32(want.Namelen) {
		t.Errorf("statfs %+v, host %+v", s, want)
	}
	_, err = c.Mknod(0, "chr", unix.S_IFCHR|0o600, 1, 3, 0)
	must(t, err)
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(ts.upper, "chr"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("char device: mode %o rdev %d:%d", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	// Device nodes are never opened on the host for a client.
	_, err = c.Walk(0, 1, "chr")
	must(t, err)
	_, _, err = c.Lopen(1, p9wire.ORdwr)
	wantErrno(t, "open char device", err, unix.EINVAL)
	// Flush of a tag that is not in flight is answered.
	must(t, c.Flush(1234))
}

func TestReadOnlyUnion(t *testing.T) {
	ts := startServer(t, serverOptions{readOnly: true})
	c := ts.dial(t, 0)
	_, err := c.Walk(0, 1, "file")
	must(t, err)
	_, err = c.Walk(0, 2)
	must(t, err)
	tests := []struct {
		name string
		do   func() error
	}{
		{"mkdir", func() error { _, err := c.Mkdir(0, "x", 0o755, 0); return err }},
		{"lcreate", func() error { _, _, err := c.Lcreate(2, "x", p9wire.ORdwr, 0o644, 0); return err }},
		{"symlink", func() error { _, err := c.Symlink(0, "x", "y", 0); return err }},
		{"mknod", func() error { _, err := c.Mknod(0, "x", unix.S_IFIFO|0o644, 0, 0, 0); return err }},
		{"unlink", func() error { return c.Unlinkat(0, "file", 0) }},
		{"rename", func() error { return c.Renameat(0, "file", 0, "x") }},
		{"link", func() error { return c.Link(0, 1, "x") }},
		{"chmod", func() error { return c.Setattr(1, p9wire.SetAttr{Valid: p9wire.SetattrMode, Mode: 0o600}) }},
		{"setxattr", func() error { return c.SetXattr(1, 3, "user.x", []byte("1"), 0) }},
		{"open for write", func() error { _, _, err := c.Lopen(1, p9wire.OWronly); return err }},
	}
	for _, tt := range tests {
		wantErrno(t, tt.name, tt.do(), unix.EROFS)
	}
	// Reading still works.
	_, err = c.Walk(0, 4, "file")
	must(t, err)
	_, _, err = c.Lopen(4, p9wire.ORdonly)
	must(t, err)
	data, err := c.Read(4, 0, 100)
	must(t, err)
	if string(data) != "lower data\n" {
		t.Errorf("read %q", data)
	}
}

func TestConcurrentRequestsOnOneConnection(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.dial(t, 0)
	errs := make(chan error, 64)
	for i := range 64 {
		go func() {
			fid := uint32(100 + i)
			if _, err := c.Walk(0, fid, "dir", "a"); err != nil {
				errs <- err
				return
			}
			_, err := c.Getattr(fid, p9wire.GetattrBasic)
			if err == nil {
				err = c.Clunk(fid)
			}
			errs <- err
		}()
	}
	for range 64 {
		must(t, <-errs)
	}
}
