package layertool

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"

	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// mappedPrefix is QEMU's mapped-xattr namespace, in which unprivileged
// servers keep the owners and modes clients set (union/attr.go).
const mappedPrefix = "user.virtfs."

// isPrivateXattr reports whether an xattr is bookkeeping rather than data:
// overlay markers in either namespace and mapped owners.
func isPrivateXattr(name string) bool {
	return whiteout.IsPrivateXattr(name) || strings.HasPrefix(name, mappedPrefix)
}

// xattr is one extended attribute.
type xattr struct {
	name  string
	value []byte
}

// meta is what a client sees of an object, apart from its data: the host
// attributes with mapped owners applied, and its data xattrs.
type meta struct {
	mode     uint32 // S_IFMT | 07777
	uid, gid uint32
	rdev     uint64
	size     int64
	nlink    uint64
	mtime    unix.Timespec
	xattrs   []xattr  // sorted by name, private ones left out
	private  []string // names of the private (overlay) xattrs left out
	target   string   // of a symbolic link
}

// readMeta reads the meta of name in dirfd, whose lstat is st.
func readMeta(dirfd int, name string, st *unix.Stat_t) (meta, error) {
	return readMetaWith(st, func() ([]string, error) { return listXattrs(dirfd, name) },
		func(x string) ([]byte, error) { return getXattr(dirfd, name, x) },
		func(buf []byte) (int, error) { return unix.Readlinkat(dirfd, name, buf) })
}

// readMetaFd is readMeta for an object open at fd (not a symbolic link):
// no path is looked up again, which counts over many small files.
func readMetaFd(fd int, st *unix.Stat_t) (meta, error) {
	return readMetaWith(st, func() ([]string, error) { return listXattrsFd(fd) },
		func(x string) ([]byte, error) { return getXattrFd(fd, x) }, nil)
}

// statMeta is the meta of an object without xattrs (a symbolic link's
// target aside) whose lstat is st.
func statMeta(st *unix.Stat_t) meta {
	return meta{mode: st.Mode, uid: st.Uid, gid: st.Gid, rdev: st.Rdev, size: st.Size, nlink: uint64(st.Nlink), mtime: st.Mtim}
}

func readMetaWith(st *unix.Stat_t, list func() ([]string, error), get func(string) ([]byte, error), readlink func([]byte) (int, error)) (meta, error) {
	m := statMeta(st)
	names, err := list()
	if err != nil {
		return m, err
	}
	for _, n := range names {
		if whiteout.IsPrivateXattr(n) {
			m.private = append(m.private, n)
			continue
		}
		v, err := get(n)
		if err == unix.ENODATA {
			continue
		}
		if err != nil {
			return m, err
		}
		if strings.HasPrefix(n, mappedPrefix) {
			applyMapped(&m, n[len(mappedPrefix):], v)
			continue
		}
		m.xattrs = append(m.xattrs, xattr{n, v})
	}
	if fileType(st) == unix.S_IFLNK && readlink != nil {
		buf := make([]byte, unix.PathMax)
		k, err := readlink(buf)
		if err != nil {
			return m, err
		}
		m.target = string(buf[:k])
	}
	return m, nil
}

// applyMapped applies one mapped-xattr owner field; values of the wrong
// size are ignored, as union ignores them (fsck reports them).
func applyMapped(m *meta, field string, v []byte) {
	switch field {
	case "uid":
		if len(v) == 4 {
			m.uid = binary.NativeEndian.Uint32(v)
		}
	case "gid":
		if len(v) == 4 {
			m.gid = binary.NativeEndian.Uint32(v)
		}
	case "mode":
		if len(v) == 4 {
			m.mode = m.mode&unix.S_IFMT | binary.NativeEndian.Uint32(v)&0o7777
		}
	case "rdev":
		if len(v) == 8 {
			m.rdev = binary.NativeEndian.Uint64(v)
		}
	}
}

// sameMeta reports whether two objects look the same to a client, data
// aside. Directories are compared without size and link count, which
// overlayfs reports from one layer only.
func sameMeta(a, b *meta) bool {
	if a.mode != b.mode || a.uid != b.uid || a.gid != b.gid || a.mtime != b.mtime || a.target != b.target {
		return false
	}
	if a.mode&unix.S_IFMT != unix.S_IFDIR && (a.size != b.size || a.nlink != b.nlink) {
		return false
	}
	if (a.mode&unix.S_IFMT == unix.S_IFCHR || a.mode&unix.S_IFMT == unix.S_IFBLK) && a.rdev != b.rdev {
		return false
	}
	if len(a.xattrs) != len(b.xattrs) {
		return false
	}
	for i := range a.xattrs {
		if a.xattrs[i].name != b.xattrs[i].name || !bytes.Equal(a.xattrs[i].value, b.xattrs[i].value) {
			return false
		}
	}
	return true
}

// sameData reports whether the regular files a (in dirfd a) and b hold the
// same bytes.
func sameData(adir int, aname string, bdir int, bname string) (bool, error) {
	fa, err := openFileAt(adir, aname)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := openFileAt(bdir, bname)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == io.EOF || eb == io.ErrUnexpectedEOF, nil
		}
		if ea != nil {
			return false, ea
		}
		if eb != nil && eb != io.EOF && eb != io.ErrUnexpectedEOF {
			return false, eb
		}
	}
}

// sameObject reports whether the upper object (udir, name, ust) shows a
// client what the lower object (ldir, name, lst) shows: type, attributes,
// xattrs, and the data of a regular file.
func sameObject(udir int, ust *unix.Stat_t, ldir int, lst *unix.Stat_t, name string) (bool, error) {
	if fileType(ust) != fileType(lst) {
		return false, nil
	}
	um, err := readMeta(udir, name, ust)
	if err != nil {
		return false, err
	}
	lm, err := readMeta(ldir, name, lst)
	if err != nil {
		return false, err
	}
	if !sameMeta(&um, &lm) {
		return false, nil
	}
	if fileType(ust) == unix.S_IFREG {
		return sameData(udir, name, ldir, name)
	}
	return true, nil
}
