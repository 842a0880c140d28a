package union

import (
	"golang.org/x/sys/unix"
)

// How owners and modes are kept on the host is owner.go's business.

// Attr returns n's attributes. A merged directory reports one link, as
// overlayfs does, since its real count is spread over layers.
func (n *Node) Attr() (Attr, error) {
	fd := n.objFd()
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil {
		return Attr{}, err
	}
	a := Attr{
		ID:      n.id,
		Mode:    st.Mode,
		Nlink:   uint64(st.Nlink), // uint32 on arm64 and riscv64
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
	n.u.shownOwner(fd, &a)
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
	var uid, gid, mode *uint32
	if sa.SetUID {
		uid = &sa.UID
	}
	if sa.SetGID {
		gid = &sa.GID
	}
	if sa.SetMode {
		mode = &sa.Mode
	}
	if err := n.u.storeOwner(objPath(fd), n.typ, uid, gid, mode, ownerSetByClient); err != nil {
		return err
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
