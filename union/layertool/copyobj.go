package layertool

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// copier copies objects of a merged tree into a plain directory tree, as
// what clients see: owners as root, mapped xattrs unprivileged (as union
// keeps them), data xattrs, times; hard links among the copied names kept.
type copier struct {
	privileged bool
	links      map[fileKey]linkRef
	buf        []byte
	progress   Progress
}

// linkRef is where the first copy of a hard-linked inode went.
type linkRef struct {
	path []string // below the destination root
}

func newCopier(p Progress) *copier {
	return &copier{privileged: os.Geteuid() == 0, links: map[fileKey]linkRef{}, buf: make([]byte, 1<<20), progress: p}
}

// copyObject copies the non-directory name of sdir (lstat st) to name in
// ddir. dpath is its path below the destination root, for hard links,
// resolved through dirs. data, when not nil, holds a regular file's bytes
// (a metadata-only copy's lower file).
func (c *copier) copyObject(sdir int, name string, st *unix.Stat_t, ddir int, dpath []string, dirs *dirCache, data *dataSource) error {
	m, err := readMeta(sdir, name, st)
	if err != nil {
		return err
	}
	if st.Nlink > 1 {
		key := fileKey{st.Dev, st.Ino}
		if first, ok := c.links[key]; ok {
			src, err := dirs.open(first.path[:len(first.path)-1])
			if err != nil {
				return err
			}
			return unix.Linkat(src, first.path[len(first.path)-1], ddir, name, 0)
		}
		c.links[key] = linkRef{path: append([]string(nil), dpath...)}
	}
	switch fileType(st) {
	case unix.S_IFREG:
		dd, dn := sdir, name
		if data != nil {
			dd, dn = data.dir, data.name
		}
		if err := c.copyData(dd, dn, ddir, name, st.Size); err != nil {
			return err
		}
	case unix.S_IFLNK:
		if err := unix.Symlinkat(m.target, ddir, name); err != nil {
			return err
		}
	case unix.S_IFIFO:
		if err := unix.Mkfifoat(ddir, name, 0o600); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK:
		if !c.privileged {
			return fmt.Errorf("device node: only root can copy it")
		}
		if err := unix.Mknodat(ddir, name, fileType(st)|0o600, int(m.rdev)); err != nil {
			return err
		}
	case unix.S_IFSOCK:
		return nil // a socket is a live endpoint, not data
	}
	return c.applyMeta(ddir, name, &m, st)
}

// copyData copies a regular file, holes kept (SEEK_DATA/SEEK_HOLE), through
// copy_file_range where the kernel allows (a reflink on XFS/btrfs).
func (c *copier) copyData(sdir int, sname string, ddir int, dname string, size int64) error {
	src, err := openFileAt(sdir, sname)
	if err != nil {
		return err
	}
	defer src.Close()
	fd, err := unix.Openat(ddir, dname, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	dst := os.NewFile(uintptr(fd), dname)
	defer dst.Close()
	sfd := int(src.Fd())
	var off int64
	for off < size {
		data, err := unix.Seek(sfd, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break // only a hole is left
		}
		if err != nil {
			data = off
		}
		hole, err := unix.Seek(sfd, data, unix.SEEK_HOLE)
		if err != nil {
			hole = size
		}
		for data < hole {
			soff, doff := data, data
			n, err := unix.CopyFileRange(sfd, &soff, fd, &doff, int(min(hole-data, 1<<30)), 0)
			if err != nil || n == 0 {
				// Fall back to reading and writing.
				k, rerr := src.ReadAt(c.buf[:min(int64(len(c.buf)), hole-data)], data)
				if k == 0 {
					if rerr == nil || rerr == io.EOF {
						rerr = fmt.Errorf("file shrank while copied")
					}
					return rerr
				}
				if err := pwriteAll(fd, c.buf[:k], data); err != nil {
					return err
				}
				n = k
			}
			data += int64(n)
		}
		off = hole
	}
	report(c.progress, 1, size)
	return unix.Ftruncate(fd, size)
}

// applyMeta sets owner, mode, data xattrs and times of name in dirfd to m.
func (c *copier) applyMeta(dirfd int, name string, m *meta, st *unix.Stat_t) error {
	isLink := m.mode&unix.S_IFMT == unix.S_IFLNK
	mode := m.mode & 0o7777
	if c.privileged {
		if err := unix.Fchownat(dirfd, name, int(m.uid), int(m.gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	for _, x := range m.xattrs {
		if err := setXattr(dirfd, name, x.name, x.value); err != nil {
			return fmt.Errorf("xattr %s: %w", x.name, err)
		}
	}
	if !isLink {
		if t := m.mode & unix.S_IFMT; !c.privileged && (t == unix.S_IFREG || t == unix.S_IFDIR) {
			// (Linux keeps no user.* xattrs on FIFOs, sockets, devices
			// or symbolic links: those show the server's owner.)
			var b4 [4]byte
			for _, kv := range []struct {
				k string
				v uint32
			}{{"uid", m.uid}, {"gid", m.gid}, {"mode", mode}} {
				binary.NativeEndian.PutUint32(b4[:], kv.v)
				if err := setXattr(dirfd, name, mappedPrefix+kv.k, b4[:]); err != nil {
					return fmt.Errorf("mapped owner: %w", err)
				}
			}
			mode |= 0o600
			if m.mode&unix.S_IFMT == unix.S_IFDIR {
				mode |= 0o700
			}
		}
		if err := unix.Fchmodat(dirfd, name, mode, 0); err != nil {
			return err
		}
	}
	return setTimes(dirfd, name, st)
}

func setTimes(dirfd int, name string, st *unix.Stat_t) error {
	return unix.UtimesNanoAt(dirfd, name, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}
