package layertool

import (
	"archive/tar"
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// What a regular file that import creates already has, so that its
// per-file calls set only what differs: created with its final mode where
// the umask keeps every bit of it, a file needs no fchmod; owned by the
// importing user with the group a new file in its directory gets, no
// fchown. Most image layers are root's files of modes 0644 and 0755
// unpacked as root: two calls of six per file fewer (tar x makes both).
//
// Where the result could differ from what is asked, the calls are made as
// before: a default ACL anywhere (it replaces the umask for new files), a
// umask that cannot be read, setuid, setgid or sticky bits (a later fchown
// clears the first two; they are set after it).

// freshFiles says what import can leave out. Not safe for concurrent use
// (one importer's).
type freshFiles struct {
	umask      uint32
	umaskKnown bool
	// acl: a directory of the import may hold a default ACL, so the
	// created mode is not known.
	acl        bool
	euid, egid int
}

func newFreshFiles(root int) *freshFiles {
	f := &freshFiles{euid: os.Geteuid(), egid: os.Getegid()}
	f.umask, f.umaskKnown = readUmask()
	f.noteDirXattrs(root)
	return f
}

// readUmask reads the process's umask from /proc (Linux 4.7 on), which,
// unlike umask(2), does not change it for the other threads meanwhile.
func readUmask() (uint32, bool) {
	fh, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			return uint32(m), err == nil
		}
	}
	return 0, false
}

// noteDirXattrs looks for a default ACL on the directory open at fd (the
// root: the directories import makes below it inherit it).
func (f *freshFiles) noteDirXattrs(fd int) {
	_, err := unix.Fgetxattr(fd, "system.posix_acl_default", nil)
	if err != unix.ENODATA && err != unix.ENOTSUP && err != unix.EOPNOTSUPP {
		f.acl = true // present, or unknown
	}
}

// noteHeader notes an entry whose xattrs the archive sets: a default ACL
// on a directory makes the modes of files below it unknown.
func (f *freshFiles) noteHeader(h *tar.Header) {
	if _, ok := h.PAXRecords["SCHILY.xattr.system.posix_acl_default"]; ok {
		f.acl = true
	}
}

// createMode returns the permission bits to create a file with whose host
// mode is to be mode, and whether it then has that mode (no fchmod).
func (f *freshFiles) createMode(mode uint32) (uint32, bool) {
	known := f.umaskKnown && !f.acl
	if !known || mode&0o7000 != 0 || mode&f.umask != 0 {
		return 0o600, known && mode == 0o600&^f.umask
	}
	return mode, true
}

// ownerKept reports whether a file just created in the directory open at
// parent (a descriptor of dirs) is owned by uid:gid already.
func (f *freshFiles) ownerKept(dirs *dirCache, parent, uid, gid int) bool {
	if uid != f.euid {
		return false
	}
	g, ok := dirs.newFileGroup(parent, f.egid)
	return ok && g == gid
}
