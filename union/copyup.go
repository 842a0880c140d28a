package union

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// copyUpLocks serializes copy-ups of one object (keyed by stable id) while
// copy-ups of different objects run in parallel.
type copyUpLocks struct {
	mu      sync.Mutex
	pending map[uint64]*copyUpLock
}

type copyUpLock struct {
	mu      sync.Mutex
	waiters int
}

func (c *copyUpLocks) lock(id uint64) (unlock func()) {
	c.mu.Lock()
	if c.pending == nil {
		c.pending = make(map[uint64]*copyUpLock)
	}
	l := c.pending[id]
	if l == nil {
		l = &copyUpLock{}
		c.pending[id] = l
	}
	l.waiters++
	c.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		c.mu.Lock()
		l.waiters--
		if l.waiters == 0 {
			delete(c.pending, id)
		}
		c.mu.Unlock()
	}
}

var workSeq atomic.Uint64

// workName returns a fresh name for an object being built in the work
// directory. Names start with '#', as overlayfs's do.
func workName() string {
	return "#" + strconv.FormatUint(workSeq.Add(1), 16)
}

// isWorkName reports whether name is one workName makes (or overlayfs's
// own, which has the same form).
func isWorkName(name string) bool {
	if len(name) < 2 || name[0] != '#' {
		return false
	}
	_, err := strconv.ParseUint(name[1:], 16, 64)
	return err == nil
}

// copyMode says what a copy-up is for, and so what it must copy.
type copyMode int

const (
	// copyMeta: for a change that keeps the data (owner, mode, times,
	// xattrs, rename, link). With Options.Metacopy a regular file gets
	// a metadata-only copy (metacopy.go); otherwise all is copied.
	copyMeta copyMode = iota
	// copyWithData: the data is about to be written; it must be in the upper.
	copyWithData
	// copyEmpty: the data is about to be thrown away (open with O_TRUNC,
	// truncate to 0); it is not copied.
	copyEmpty
)

// copyUp makes sure n has an object in the upper layer, copying it and its
// parents up if needed, and returns the O_PATH descriptor of the upper
// object. It returns EROFS for a read-only union. Safe for concurrent use:
// two Nodes of one object copy it once. A regular file may get only its
// metadata (Options.Metacopy): callers that write data use copyUpForWrite.
func (n *Node) copyUp() (int, error) { return n.copyUpMode(copyMeta) }

// copyUpForWrite is copyUp for a change of the data: a metadata-only copy
// gets its data too.
func (n *Node) copyUpForWrite() (int, error) { return n.copyUpMode(copyWithData) }

// copyUpEmpty is copyUp for a change that truncates the file to nothing
// anyway (open with O_TRUNC, truncate to 0): the data is not copied.
func (n *Node) copyUpEmpty() (int, error) { return n.copyUpMode(copyEmpty) }

func (n *Node) copyUpMode(mode copyMode) (int, error) {
	fd, err := n.copyUpObject(mode)
	if err != nil || mode == copyMeta || !n.stillMetacopy() {
		return fd, err
	}
	// A metadata-only copy, made earlier or by another Node meanwhile:
	// the data must be in it before it is written.
	return n.copyInData(mode == copyEmpty)
}

// copyUpObject makes sure n has an upper object; for copyMeta it may be
// a metadata-only copy (and it may be one another Node made).
func (n *Node) copyUpObject(mode copyMode) (int, error) {
	u := n.u
	if u.upper == nil {
		return -1, unix.EROFS
	}
	up, lowers, name, pfd, unlock, err := n.lockForCopyUp()
	if err != nil || up >= 0 {
		return up, err
	}
	defer unlock()

	// Whether the name is taken in the upper (another Node of this object
	// copied it meanwhile, or it was deleted or replaced) is learned when
	// the copy is placed, from the EEXIST of a placement that never
	// replaces: no lookup before, none at placement, for the common case
	// of a name that is free.
	src := lowers[0]
	meta := mode == copyMeta && u.metacopy && n.typ == unix.S_IFREG
	// Charged before anything is built: past the quota, EDQUOT and no copy.
	charge, err := u.reserveCopy(src, mode)
	if err != nil {
		return -1, fmt.Errorf("copy up %s: %w", n.Path(), err)
	}
	w := &workCopy{name: workName(), fd: -1}
	defer w.close()
	if err := u.copyObject(src, n.dataFd(), w, n.id, mode != copyEmpty, meta); err != nil {
		charge.done(false)
		w.discard(u.work)
		return -1, fmt.Errorf("copy up %s: %w", n.Path(), err)
	}
	if err := n.placeCopy(w, pfd, name, charge); err != nil {
		w.discard(u.work)
		if err == unix.EEXIST {
			return n.adoptTaken(pfd, name)
		}
		return -1, fmt.Errorf("copy up %s: %w", n.Path(), err)
	}
	u.namespaceChanged()
	fd, err := n.adoptUpper(pfd, name, false)
	if err == nil {
		n.mu.Lock()
		n.metacopy = meta
		n.mu.Unlock()
	}
	return fd, err
}

// adoptTaken is copyUpObject's answer when the name was taken in the
// upper: a copy of n made through another Node is adopted; anything else
// (a whiteout: n was deleted; an object of another type or origin: n was
// replaced) means n is stale (ENOENT). Call with n's copy-up lock held.
func (n *Node) adoptTaken(pfd int, name string) (int, error) {
	var st unix.Stat_t
	if err := lstatAt(pfd, name, &st); err != nil {
		return -1, err // ENOENT: taken, then removed through another Node
	}
	if n.u.isWhiteout(pfd, name, &st) || st.Mode&unix.S_IFMT != n.typ {
		return -1, unix.ENOENT
	}
	return n.adoptUpper(pfd, name, true)
}

// lockForCopyUp takes n's copy-up lock with n's parent copied up, and
// returns n's state read under that lock: the state it is copied with. If
// n has an upper object by then (another fid's copy-up finished while this
// one waited), that is returned and nothing is locked. A rename of n while
// it waited (a copied-up n can be renamed through another fid) is followed:
// n's new name and parent are used, never the old name, which may now be a
// whiteout.
func (n *Node) lockForCopyUp() (up int, lowers []lowerObj, name string, pfd int, unlock func(), err error) {
	for {
		up, lowers, parent, name := n.state()
		if up >= 0 {
			return up, nil, "", -1, nil, nil
		}
		if parent == nil || len(lowers) == 0 {
			return -1, nil, "", -1, nil, unix.EIO // the root always has an upper
		}
		pfd, err = parent.copyUp()
		if err != nil {
			return -1, nil, "", -1, nil, err
		}
		unlock = n.u.copyups.lock(n.id)
		up2, _, parent2, name2 := n.state()
		if up2 >= 0 {
			unlock()
			return up2, nil, "", -1, nil, nil
		}
		if parent2 == parent && name2 == name {
			return -1, lowers, name, pfd, unlock, nil
		}
		unlock()
	}
}

// workCopy is a copy being built in the work directory: a regular file is
// an unnamed O_TMPFILE where the filesystem allows (nothing to clean up
// after a crash), anything else the entry name of the work directory.
type workCopy struct {
	name    string
	fd      int  // a regular file's copy, open for writing; else -1
	tmpfile bool // fd is an O_TMPFILE: name is not used
}

// discard removes a copy that will not be placed.
func (w *workCopy) discard(work int) {
	if !w.tmpfile {
		removeWork(work, w.name)
	}
}

func (w *workCopy) close() {
	if w.fd >= 0 {
		unix.Close(w.fd)
		w.fd = -1
	}
}

// placeCopy puts the finished copy w into the upper directory pfd as name
// (a link of the O_TMPFILE, or a rename that never replaces), under nsMu:
// if the name is taken (a whiteout, or an object made meanwhile), nothing
// is placed and the answer is EEXIST, for the caller to look at what took
// it. It settles the copy's quota charge either way.
func (n *Node) placeCopy(w *workCopy, pfd int, name string, charge *reservation) error {
	u := n.u
	u.nsMu.Lock()
	defer u.nsMu.Unlock()
	return u.placedCounted(charge, pfd, name, func() error { return n.placeCopyLocked(w, pfd, name) })
}

func (n *Node) placeCopyLocked(w *workCopy, pfd int, name string) error {
	u := n.u
	// A copy-up is not a change of the parent directory: its times are
	// put back after the rename, as overlayfs does.
	var pst unix.Stat_t
	havePst := fstat(pfd, &pst) == nil
	var err error
	if w.tmpfile {
		err = u.linkTmpfile(w.fd, pfd, name)
	} else {
		err = unix.Renameat2(u.work, w.name, pfd, name, unix.RENAME_NOREPLACE)
	}
	if err != nil {
		return err
	}
	if havePst {
		unix.UtimesNanoAt(pfd, "", []unix.Timespec{pst.Atim, pst.Mtim}, unix.AT_EMPTY_PATH)
	}
	return nil
}

// linkTmpfile links the O_TMPFILE open at fd (made without O_EXCL, so it
// may be linked once) into the directory dir as name. By the descriptor
// itself where the server may (AT_EMPTY_PATH wants CAP_DAC_READ_SEARCH,
// which a root server keeps), else through /proc, which needs no
// capability but costs a path walk through procfs on every copy-up.
func (u *Union) linkTmpfile(fd, dir int, name string) error {
	byFd := u.privileged && !u.noEmptyPathLink.Load()
	if byFd {
		err := unix.Linkat(fd, "", dir, name, unix.AT_EMPTY_PATH)
		if err != unix.ENOENT && err != unix.EPERM {
			return err
		}
		// ENOENT is also how a missing capability is answered: /proc
		// decides, and is used from then on if it succeeds.
	}
	err := unix.Linkat(unix.AT_FDCWD, procPath(fd), dir, name, unix.AT_SYMLINK_FOLLOW)
	if byFd && err == nil {
		u.noEmptyPathLink.Store(true)
	}
	return err
}

// adoptUpper opens name in the upper directory pfd as n's upper object.
// Unless n just copied it up itself (verify false), it must be a copy of
// n's object: anything else was made under n's name after its object was
// deleted, and n is stale (ENOENT).
func (n *Node) adoptUpper(pfd int, name string, verify bool) (int, error) {
	fd, err := openPathAt(pfd, name)
	if err != nil {
		return -1, err
	}
	if verify && n.u.readOrigin(fd, n.typ == unix.S_IFLNK, pfd, name) != n.id {
		unix.Close(fd)
		return -1, unix.ENOENT
	}
	mc := verify && n.u.adoptsMetacopy(n.typ, fd)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.upper >= 0 {
		unix.Close(fd)
		return n.upper, nil
	}
	n.upper = fd
	n.metacopy = mc
	return fd, nil
}

// removeWork removes a half-built object from the work directory.
func removeWork(work int, name string) {
	if unix.Unlinkat(work, name, 0) == unix.EISDIR {
		if fd, err := unix.Openat(work, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
			removeAllAt(fd)
			unix.Close(fd)
		}
		unix.Unlinkat(work, name, unix.AT_REMOVEDIR)
	}
}

// copyObject builds a copy w of the lower object src in the work
// directory: data, owner, mode, xattrs, origin id, then times. Regular files
// and directories get their metadata through open descriptors (no lookups
// by name); symlinks and special files by name, without following.
// A regular file's data comes from dataFd (src itself unless src is a
// metadata-only copy); meta makes a metadata-only copy: the size, no data,
// and the metacopy marker.
func (u *Union) copyObject(src lowerObj, dataFd int, w *workCopy, id uint64, withData, meta bool) error {
	tmp := w.name
	var st unix.Stat_t
	if err := fstat(src.fd, &st); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		size := st.Size
		if !withData || meta {
			size = 0
		}
		sfd, dfd, err := u.copyFileData(dataFd, w, size, u.hostMode(st.Mode, unix.S_IFREG))
		if err != nil {
			return err
		}
		if sfd >= 0 {
			defer unix.Close(sfd)
		}
		if meta {
			if err := unix.Ftruncate(dfd, st.Size); err != nil {
				return err
			}
		}
		// The metadata comes from the open source where there is one; a
		// copy without data (metadata only, or truncated) opens nothing
		// and reads it through the O_PATH descriptor, as does a copy
		// whose data is not src's (the metadata-only copy's own is).
		msrc := objOpen(sfd)
		if sfd < 0 || dataFd != src.fd {
			msrc = objPath(src.fd)
		}
		if err := u.finishCopy(msrc, dfd, &st, id); err != nil {
			return err
		}
		if meta {
			// No data to sync, and no metadata sync either: overlayfs
			// with metacopy=on skips the metadata fsync of metadata-only
			// copy-ups too, since a sync per file would undo what
			// metacopy is for (chown -R over a base tree).
			return whiteout.SetMetacopy(dfd, u.ns)
		}
		return syncCopy(dfd)
	case unix.S_IFDIR:
		if err := unix.Mkdirat(u.work, tmp, 0o700); err != nil {
			return err
		}
		dfd, err := unix.Openat(u.work, tmp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(dfd)
		sfd, err := reopen(src.fd, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer unix.Close(sfd)
		if err := u.finishCopy(objOpen(sfd), dfd, &st, id); err != nil {
			return err
		}
		return syncCopy(dfd)
	case unix.S_IFLNK:
		target, err := readlinkFd(src.fd)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, u.work, tmp); err != nil {
			return err
		}
	default:
		if err := unix.Mknodat(u.work, tmp, st.Mode&unix.S_IFMT|0o600, int(st.Rdev)); err != nil {
			return err
		}
	}
	if err := u.finishCopyAt(src.fd, tmp, &st, id); err != nil {
		return err
	}
	// A symlink or device cannot be opened to fsync it; syncing the work
	// directory commits its entry and, on journaling filesystems, the
	// inode with it.
	return syncCopy(u.work)
}

// syncCopy makes a finished copy durable before placeCopy renames it into
// place: data and metadata (owner, mode, xattrs, origin, times), so that
// after a host crash the name shows either the lower object or a complete
// copy, never an empty file or a directory without its owner and mode.
// Overlayfs moved its fsync after the metadata copy for the same reason
// (upstream 7d6899fb69d2, after a power-cut test lost a copied-up
// directory's permissions on a filesystem that does not order metadata).
func syncCopy(fd int) error {
	return unix.Fsync(fd)
}

// finishCopy gives the work object open at dst the owner, mode, xattrs and
// times of the lower object src (an open descriptor, or an O_PATH one read
// through /proc), whose lstat is st, and records its origin id.
//
// The owner comes first: chown clears setuid and file capabilities
// (security.capability) on the host, so xattrs follow it, and the times
// come last.
func (u *Union) finishCopy(src hostObj, dst int, st *unix.Stat_t, id uint64) error {
	if err := u.copyOwner(src, objOpen(dst), st); err != nil {
		return err
	}
	list := func() ([]string, error) { return listXattrFd(src.fd) }
	get := func(name string) ([]byte, error) { return getXattrFd(src.fd, name) }
	if !src.open {
		p := procPath(src.fd)
		list = func() ([]string, error) { return listXattrPath(p, unix.Listxattr) }
		get = func(name string) ([]byte, error) { return getXattrPath(p, name, unix.Getxattr) }
	}
	err := copyXattrs(list, get, func(name string, v []byte) error { return unix.Fsetxattr(dst, name, v, 0) })
	if err != nil {
		return err
	}
	if err := u.writeOrigin(objOpen(dst), id); err != nil {
		return err
	}
	return unix.UtimesNanoAt(dst, "", []unix.Timespec{st.Atim, st.Mtim}, unix.AT_EMPTY_PATH)
}

// copyOwner gives the copy dst the owner and mode the lower object src
// (whose lstat is st) shows: a copy-up must not change what a client sees.
// A copy open at dst that already has them (made by the server's own user
// with the right permission bits) is left alone: two inode changes fewer
// on every copy-up, which a metadata-only copy-up (chown -R) mostly is.
func (u *Union) copyOwner(src, dst hostObj, st *unix.Stat_t) error {
	shown := Attr{UID: st.Uid, GID: st.Gid, Mode: st.Mode}
	if src.fd >= 0 {
		u.shownOwner(src.fd, &shown)
	}
	var cur unix.Stat_t
	if dst.open && fstat(dst.fd, &cur) == nil && u.ownerStored(&cur, shown.UID, shown.GID, shown.Mode) {
		return nil
	}
	return u.storeOwner(dst, st.Mode&unix.S_IFMT, &shown.UID, &shown.GID, &shown.Mode, ownerOfNew)
}

// finishCopyAt is finishCopy for a symlink or special file tmp in the work
// directory, which cannot be opened (a device must not be). Linux refuses
// user.* xattrs on these, so an unprivileged union records no origin for
// them (the object then gets a new id when copied up) and copies none of
// their xattrs.
func (u *Union) finishCopyAt(srcFd int, tmp string, st *unix.Stat_t, id uint64) error {
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		// Symlinks have no mode of their own, and their xattrs would need
		// the lower parent.
		if err := u.copyOwner(objAt(-1, ""), objAt(u.work, tmp), st); err != nil {
			return err
		}
		u.writeOrigin(objAt(u.work, tmp), id)
	} else {
		dst, err := openPathAt(u.work, tmp)
		if err != nil {
			return err
		}
		defer unix.Close(dst)
		if err := u.copyOwner(objPath(srcFd), objPath(dst), st); err != nil {
			return err
		}
		src, dstPath := procPath(srcFd), procPath(dst)
		err = copyXattrs(
			func() ([]string, error) { return listXattrPath(src, unix.Listxattr) },
			func(name string) ([]byte, error) { return getXattrPath(src, name, unix.Getxattr) },
			func(name string, v []byte) error { return unix.Setxattr(dstPath, name, v, 0) })
		if err != nil && u.privileged {
			return err
		}
		u.writeOrigin(objPath(dst), id)
	}
	return unix.UtimesNanoAt(u.work, tmp, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}

// copyXattrs copies every xattr but the private ones, through the given
// accessors of the source and the copy.
func copyXattrs(list func() ([]string, error), get func(string) ([]byte, error), set func(string, []byte) error) error {
	names, err := list()
	if err != nil {
		if err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
			return nil
		}
		return err
	}
	for _, name := range names {
		if whiteout.IsPrivateXattr(name) {
			continue
		}
		v, err := get(name)
		if err == unix.ENODATA {
			continue
		}
		if err != nil {
			return fmt.Errorf("read xattr %s: %w", name, err)
		}
		if err := set(name, v); err != nil {
			if err == unix.EPERM && !isUserXattr(name) {
				// e.g. security.* or trusted.* without privilege: the
				// copy is still a faithful copy of what we may write.
				continue
			}
			return fmt.Errorf("write xattr %s: %w", name, err)
		}
	}
	return nil
}

// readlinkFd reads the target of the symlink behind the O_PATH fd.
func readlinkFd(fd int) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, len(buf)*4)
	}
}
