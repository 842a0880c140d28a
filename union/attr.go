package union

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// Ownership as root is stored on the host as it is. Unprivileged, the
// union keeps what it cannot set on the host in QEMU's mapped-xattr format:
// user.virtfs.uid, .gid, .mode (4-byte native-endian integers) and .rdev
// (8 bytes), and shows those values to clients. The host object keeps modes
// the server itself can use (owner read/write).

const (
	mappedUID  = mappedXattrPrefix + "uid"
	mappedGID  = mappedXattrPrefix + "gid"
	mappedMode = mappedXattrPrefix + "mode"
)

// Attr returns n's attributes. A merged directory reports one link, as
// overlayfs does, since its real count is spread over layers.
func (n *Node) Attr() (Attr, error) {
	n.refreshUpper()
	fd := n.objFd()
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil {
		return Attr{}, err
	}
	a := Attr{
		ID:      n.id,
		Mode:    st.Mode,
		Nlink:   st.Nlink,
		UID:     st.Uid,
		GID:     st.Gid,
		Rdev:    st.Rdev,
		Size:    uint64(st.Size),
		Blksize: uint64(st.Blksize),
		Blocks:  uint64(st.Blocks),
		Atime:   st.Atim,
		Mtime:   st.Mtim,
		Ctime:   st.Ctim,
	}
	if n.typ == unix.S_IFDIR && n.isMerged() {
		a.Nlink = 1
	}
	if n.typ == unix.S_IFREG && n.stillMetacopy() {
		// The blocks are the data's, as overlayfs reports them.
		var dst unix.Stat_t
		if fstat(n.dataFd(), &dst) == nil {
			a.Blocks = uint64(dst.Blocks)
		}
	}
	if n.u.ownership == MappedXattr && n.typ != unix.S_IFLNK {
		n.u.applyMapped(fd, &a)
	}
	return a, nil
}

// isMerged reports whether n's directory spans more than one layer.
func (n *Node) isMerged() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	objs := len(n.lowers)
	if n.upper >= 0 {
		objs++
	}
	return objs > 1
}

func (u *Union) applyMapped(fd int, a *Attr) {
	var b [4]byte
	p := procPath(fd)
	if sz, err := unix.Getxattr(p, mappedUID, b[:]); err == nil && sz == 4 {
		a.UID = binary.NativeEndian.Uint32(b[:])
	}
	if sz, err := unix.Getxattr(p, mappedGID, b[:]); err == nil && sz == 4 {
		a.GID = binary.NativeEndian.Uint32(b[:])
	}
	if sz, err := unix.Getxattr(p, mappedMode, b[:]); err == nil && sz == 4 {
		a.Mode = a.Mode&unix.S_IFMT | binary.NativeEndian.Uint32(b[:])&0o7777
	}
}

// setMapped records owner and mode in the mapped xattrs of the object at
// the O_PATH descriptor fd; nil fields are left as they are.
func setMapped(fd int, uid, gid, mode *uint32) error {
	p := procPath(fd)
	set := func(name string, v uint32) error {
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], v)
		return unix.Setxattr(p, name, b[:], 0)
	}
	if uid != nil {
		if err := set(mappedUID, *uid); err != nil {
			return err
		}
	}
	if gid != nil {
		if err := set(mappedGID, *gid); err != nil {
			return err
		}
	}
	if mode != nil {
		return set(mappedMode, *mode&0o7777)
	}
	return nil
}

// hostMode is the mode given to a host object: as asked when owners and
// modes pass through, else with owner access kept so the server can use it.
func (u *Union) hostMode(mode uint32, isDir bool) uint32 {
	mode &= 0o7777
	if u.ownership != MappedXattr {
		return mode
	}
	if isDir {
		return mode&0o777 | 0o700
	}
	return mode&0o777 | 0o600
}

// SetAttr changes n's attributes, copying it up first. Size, then owner,
// then mode (the host clears setuid on chown), then times.
func (n *Node) SetAttr(sa SetAttr) error {
	if sa.SetSize && n.typ == unix.S_IFDIR {
		return unix.EISDIR
	}
	if sa.SetSize && n.typ != unix.S_IFREG {
		return unix.EINVAL
	}
	copyUp := n.copyUp // metadata only, where the union may
	switch {
	case sa.SetSize && sa.Size == 0:
		copyUp = n.copyUpEmpty // the data would be thrown away at once
	case sa.SetSize:
		copyUp = n.copyUpForWrite
	}
	fd, err := copyUp()
	if err != nil {
		return err
	}
	isLink := n.typ == unix.S_IFLNK
	if sa.SetSize {
		if err := n.u.truncateCounted(fd, int64(sa.Size)); err != nil {
			return err
		}
	}
	if sa.SetUID || sa.SetGID {
		if n.u.ownership == MappedXattr && !isLink {
			var uid, gid *uint32
			if sa.SetUID {
				uid = &sa.UID
			}
			if sa.SetGID {
				gid = &sa.GID
			}
			if err := setMapped(fd, uid, gid, nil); err != nil {
				return err
			}
		} else {
			uid, gid := -1, -1
			if sa.SetUID {
				uid = int(sa.UID)
			}
			if sa.SetGID {
				gid = int(sa.GID)
			}
			if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
		}
	}
	if sa.SetMode && !isLink {
		if err := unix.Chmod(procPath(fd), n.u.hostMode(sa.Mode, n.typ == unix.S_IFDIR)); err != nil {
			return err
		}
		if n.u.ownership == MappedXattr && (n.typ == unix.S_IFREG || n.typ == unix.S_IFDIR) {
			// FIFOs, sockets and devices keep no user.* xattrs: their
			// host mode is all there is.
			if err := setMapped(fd, nil, nil, &sa.Mode); err != nil {
				return err
			}
		}
	}
	if sa.Atime != TimeOmit || sa.Mtime != TimeOmit {
		ts := []unix.Timespec{timeArg(sa.Atime, sa.AtimeAt), timeArg(sa.Mtime, sa.MtimeAt)}
		if isLink {
			_, _, parent, name := n.state()
			pfd, err := parent.copyUp()
			if err != nil {
				return err
			}
			return unix.UtimesNanoAt(pfd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
		return unix.UtimesNanoAt(unix.AT_FDCWD, procPath(fd), ts, 0)
	}
	return nil
}

func timeArg(s TimeSet, at unix.Timespec) unix.Timespec {
	switch s {
	case TimeNow:
		return unix.Timespec{Nsec: unix.UTIME_NOW}
	case TimeGiven:
		return at
	}
	return unix.Timespec{Nsec: unix.UTIME_OMIT}
}
