package union

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The create path makes a file owned by the server with its final mode when
// the owner asked for is the server's own, and then changes only what the
// host did not give it (create.go). These tests pin what a client sees
// whatever the host added: the process umask, a setgid directory, a default
// ACL.

// hostStat lstats path in the upper layer.
func hostStat(t *testing.T, tu *testUnion, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(tu.upper, path), &st))
	return st
}

// TestCreateModeExactUnderUmask: the mode a client asks for is the host
// file's mode and what it sees, whatever the server's umask takes away, for
// the server's own owner and for another.
func TestCreateModeExactUnderUmask(t *testing.T) {
	tu := newUnion(t, []string{"d/"}, []string{"x=lower"})
	d := tu.mustWalk(t, "/d")
	i := 0
	for _, umask := range []int{0o022, 0o077, 0o002, 0} {
		for _, mode := range []uint32{0o644, 0o666, 0o600, 0o400, 0o777, 0o751} {
			for _, o := range []Owner{{}, {UID: 1000, GID: 1001}} {
				old := syscall.Umask(umask)
				name := "f" + string(rune('a'+i/26)) + string(rune('a'+i%26))
				i++
				c, f, err := d.Create(name, unix.O_RDWR, mode, o)
				syscall.Umask(old)
				must(t, err)
				f.Close()
				a, err := c.Attr()
				c.Release()
				must(t, err)
				st := hostStat(t, tu, "d/"+name)
				if st.Mode&0o7777 != mode || st.Uid != o.UID || st.Gid != o.GID {
					t.Errorf("umask %03o, mode %o, owner %d:%d: host file %o %d:%d", umask, mode, o.UID, o.GID, st.Mode&0o7777, st.Uid, st.Gid)
				}
				if a.Mode&0o7777 != mode || a.UID != o.UID || a.GID != o.GID {
					t.Errorf("umask %03o, mode %o, owner %d:%d: client sees %o %d:%d", umask, mode, o.UID, o.GID, a.Mode&0o7777, a.UID, a.GID)
				}
			}
		}
	}
}

// TestCreateInSetgidDirectoryKeepsAskedGroup: in a setgid upper directory
// the host gives a new file the directory's group; the file ends with the
// group the client asked for (which is the directory's when the client is
// Linux: v9fs sends it).
func TestCreateInSetgidDirectoryKeepsAskedGroup(t *testing.T) {
	tu := newUnion(t, []string{"sg/"}, []string{"x=lower"})
	p := filepath.Join(tu.upper, "sg")
	must(t, os.Chown(p, 0, 4242))
	must(t, os.Chmod(p, 0o2777))
	d := tu.mustWalk(t, "/sg")
	for _, tc := range []struct {
		name string
		o    Owner
	}{{"root-group", Owner{}}, {"dir-group", Owner{GID: 4242}}, {"other", Owner{UID: 5, GID: 6}}} {
		c, f, err := d.Create(tc.name, unix.O_RDWR, 0o640, tc.o)
		must(t, err)
		f.Close()
		c.Release()
		st := hostStat(t, tu, "sg/"+tc.name)
		if st.Uid != tc.o.UID || st.Gid != tc.o.GID || st.Mode&0o7777 != 0o640 {
			t.Errorf("%s: host file %o %d:%d; want 0640 %d:%d", tc.name, st.Mode&0o7777, st.Uid, st.Gid, tc.o.UID, tc.o.GID)
		}
	}
}

// posixACL encodes a POSIX ACL in the kernel's xattr format (version 2,
// then tag, permissions and id per entry) from (tag, perm, id) triples.
func posixACL(entries ...[3]uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return b
}

// TestCreateUnderDefaultACL: a default ACL on the upper directory takes
// the place of the umask; the file still ends with the mode asked for.
func TestCreateUnderDefaultACL(t *testing.T) {
	tu := newUnion(t, []string{"acl/"}, []string{"x=lower"})
	const userObj, user, groupObj, mask, other = 0x01, 0x02, 0x04, 0x10, 0x20
	const undefinedID = 0xffffffff
	acl := posixACL([3]uint32{userObj, 7, undefinedID}, [3]uint32{user, 7, 1234},
		[3]uint32{groupObj, 5, undefinedID}, [3]uint32{mask, 5, undefinedID}, [3]uint32{other, 0, undefinedID})
	if err := unix.Setxattr(filepath.Join(tu.upper, "acl"), "system.posix_acl_default", acl, 0); err != nil {
		t.Skipf("the upper's filesystem takes no default ACL: %v", err)
	}
	d := tu.mustWalk(t, "/acl")
	for _, mode := range []uint32{0o644, 0o600, 0o664, 0o755} {
		name := "m" + string(rune('0'+mode>>6&7)) + string(rune('0'+mode>>3&7)) + string(rune('0'+mode&7))
		c, f, err := d.Create(name, unix.O_RDWR, mode, Owner{})
		must(t, err)
		f.Close()
		a, err := c.Attr()
		c.Release()
		must(t, err)
		st := hostStat(t, tu, "acl/"+name)
		if st.Mode&0o7777 != mode || a.Mode&0o7777 != mode {
			t.Errorf("mode %o under a default ACL: host %o, client sees %o", mode, st.Mode&0o7777, a.Mode&0o7777)
		}
	}
}

// TestCreateOverStaleWhiteout: a whiteout in the upper with nothing below
// it (the lower name is gone from view anyway) is replaced by a create,
// not answered EEXIST.
func TestCreateOverStaleWhiteout(t *testing.T) {
	tu := newUnion(t, []string{"w!"}, []string{"x=lower"})
	root := tu.mustWalk(t, "/")
	c, f, err := root.Create("w", unix.O_RDWR, 0o644, Owner{})
	must(t, err)
	_, err = f.WriteAt([]byte("made"), 0)
	must(t, err)
	f.Close()
	c.Release()
	if got := tu.read(t, "/w"); got != "made" {
		t.Fatalf("w reads %q", got)
	}
	if st := hostStat(t, tu, "w"); st.Mode&unix.S_IFMT != unix.S_IFREG {
		t.Fatalf("w is %o in the upper, not a regular file", st.Mode)
	}
	_, _, err = root.Create("w", unix.O_RDWR, 0o644, Owner{})
	wantErrno(t, err, unix.EEXIST)
}

// TestLookupOfHeldNameSeesHostReplacement: a lookup of a name whose Node
// is held answers that Node only while the name still holds its upper
// object; an object put there behind the union's back gets its own Node.
func TestLookupOfHeldNameSeesHostReplacement(t *testing.T) {
	tu := newUnion(t, nil, []string{"x=lower"})
	root := tu.mustWalk(t, "/")
	c, f, err := root.Create("f", unix.O_RDWR, 0o644, Owner{})
	must(t, err)
	_, err = f.WriteAt([]byte("first"), 0)
	must(t, err)
	f.Close()
	defer c.Release()
	if again := tu.mustWalk(t, "/f"); again != c {
		t.Fatal("a lookup of the name just created does not answer its Node")
	}
	// Replaced on the host: another file renamed over it.
	must(t, os.WriteFile(filepath.Join(tu.upper, "other"), []byte("second"), 0o644))
	must(t, os.Rename(filepath.Join(tu.upper, "other"), filepath.Join(tu.upper, "f")))
	now := tu.mustWalk(t, "/f")
	if now == c {
		t.Fatal("after the host replaced f, a lookup still answers the old Node")
	}
	if got, _ := readAllNode(now); got != "second" {
		t.Fatalf("f reads %q after the host replaced it", got)
	}
	if got, _ := readAllNode(c); got != "first" {
		t.Fatalf("the old Node's holder reads %q", got)
	}
	// And a whiteout put there hides the name.
	must(t, os.Remove(filepath.Join(tu.upper, "f")))
	must(t, unix.Mknod(filepath.Join(tu.upper, "f"), unix.S_IFCHR, 0))
	if _, err := tu.walk(t, "/f"); err != unix.ENOENT {
		t.Fatalf("a lookup of f over a whiteout: %v, want ENOENT", err)
	}
}

// fixedQuota is a Quota of a number of inodes (bytes are not limited).
type fixedQuota struct {
	mu            sync.Mutex
	inodes, limit int64
}

func (q *fixedQuota) Reserve(bytes, inodes int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.inodes+inodes > q.limit {
		return fmt.Errorf("quota of %d inodes: %w", q.limit, unix.EDQUOT)
	}
	q.inodes += inodes
	return nil
}

func (q *fixedQuota) Release(bytes, inodes int64) { q.Adjust(0, -inodes) }

func (q *fixedQuota) Adjust(bytes, inodes int64) {
	q.mu.Lock()
	q.inodes += inodes
	q.mu.Unlock()
}

// TestCreateUnderQuota: with a quota, a create still opens the file it
// made (a file made read-only is written through that descriptor), and a
// taken name answers EEXIST before a full quota answers EDQUOT.
func TestCreateUnderQuota(t *testing.T) {
	tu := newUnion(t, []string{"up=u"}, []string{"low=l"})
	q := &fixedQuota{limit: 1}
	tu.Union.Close()
	u, err := Open(Options{Lowers: tu.lowers, Upper: tu.upper, Workdir: tu.work, Quota: q})
	must(t, err)
	tu.Union = u
	root := tu.mustWalk(t, "/")
	c, f, err := root.Create("ro", unix.O_WRONLY, 0o444, Owner{UID: 7, GID: 8})
	must(t, err)
	_, err = f.WriteAt([]byte("x"), 0)
	f.Close()
	c.Release()
	must(t, err)
	if st := hostStat(t, tu, "ro"); st.Mode&0o7777 != 0o444 || st.Uid != 7 || st.Gid != 8 {
		t.Errorf("ro: host file %o %d:%d; want 0444 7:8", st.Mode&0o7777, st.Uid, st.Gid)
	}
	for _, name := range []string{"up", "low", "ro"} {
		_, _, err := root.Create(name, unix.O_RDWR, 0o644, Owner{})
		wantErrno(t, err, unix.EEXIST)
	}
	_, _, err = root.Create("more", unix.O_RDWR, 0o644, Owner{})
	if !errors.Is(err, unix.EDQUOT) {
		t.Fatalf("a create past the quota: %v, want EDQUOT", err)
	}
}
