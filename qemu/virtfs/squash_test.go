package virtfs

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// FUSE opcodes and attribute bits used by the squash test.
const (
	opSetattr = 4
	opMknod   = 8
	fattrUID  = 1 << 1
	fattrGID  = 1 << 2
)

// asCaller sets the caller's ids in a request's fuse_in_header.
func asCaller(req [][]byte, uid, gid uint32) [][]byte {
	b := append(append([]byte{}, req[0]...), req[1]...)
	binary.LittleEndian.PutUint32(b[24:], uid)
	binary.LittleEndian.PutUint32(b[28:], gid)
	return [][]byte{b}
}

// TestProtocolSquash: with --squash-uid/--squash-gid a guest's new
// objects and chowns get the squash ids, whoever the guest says it is,
// and it cannot make device nodes; without squash the guest's ids are
// stored as they are.
func TestProtocolSquash(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: the union stores owners with chown")
	}
	uid, gid := uint32(4321), uint32(4322)
	for _, tc := range []struct {
		name           string
		squash         union.Squash
		wantUID        uint32
		wantGID        uint32
		wantMknodError int32
	}{
		{"squashed", union.Squash{UID: &uid, GID: &gid}, uid, gid, -int32(unix.EPERM)},
		{"plain", union.Squash{}, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, upper := newProtocolSquashed(t, tc.squash)
			out := make([]byte, 4096)
			p.Handle(1, request(opInit, 1, 0, initArgs()), [][]byte{out})

			// MKDIR "d" as root (uid 0, gid 0).
			mkdir := make([]byte, 8)
			binary.LittleEndian.PutUint32(mkdir, 0o755)
			n := p.Handle(1, request(opMkdir, 2, 1, append(mkdir, "d\x00"...)), [][]byte{out})
			if e := outHeader(t, out, n, 2); e != 0 {
				t.Fatalf("MKDIR: error %d", e)
			}
			checkOwner(t, filepath.Join(upper, "d"), tc.wantUID, tc.wantGID)

			// SETATTR of the lower file f: chown to 0:0 (copies it up).
			n = p.Handle(1, request(opLookup, 3, 1, []byte("f\x00")), [][]byte{out})
			if e := outHeader(t, out, n, 3); e != 0 {
				t.Fatalf("LOOKUP: error %d", e)
			}
			f := binary.LittleEndian.Uint64(out[outHeaderSize:])
			setattr := make([]byte, 88) // fuse_setattr_in
			binary.LittleEndian.PutUint32(setattr, fattrUID|fattrGID)
			n = p.Handle(1, asCaller(request(opSetattr, 4, f, setattr), 0, 0), [][]byte{out})
			if e := outHeader(t, out, n, 4); e != 0 {
				t.Fatalf("SETATTR: error %d", e)
			}
			checkOwner(t, filepath.Join(upper, "f"), tc.wantUID, tc.wantGID)

			// MKNOD of a character device (1, 3: /dev/null's numbers).
			mknod := make([]byte, 16) // mode, rdev, umask, padding
			binary.LittleEndian.PutUint32(mknod, unix.S_IFCHR|0o666)
			binary.LittleEndian.PutUint32(mknod[4:], uint32(unix.Mkdev(1, 3)))
			n = p.Handle(1, request(opMknod, 5, 1, append(mknod, "null\x00"...)), [][]byte{out})
			if e := outHeader(t, out, n, 5); e != tc.wantMknodError {
				t.Fatalf("MKNOD of a device: error %d, want %d", e, tc.wantMknodError)
			}
			_, err := os.Lstat(filepath.Join(upper, "null"))
			if exists := err == nil; exists != (tc.wantMknodError == 0) {
				t.Fatalf("device node in the upper: %v", err)
			}
		})
	}
}

func checkOwner(t *testing.T, path string, uid, gid uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != uid || st.Gid != gid {
		t.Fatalf("%s: owner %d:%d, want %d:%d", path, st.Uid, st.Gid, uid, gid)
	}
}
