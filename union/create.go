package union

import (
	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// Making names: create, mkdir, symlink, mknod, link (see dir.go for the
// rules and the locking they share).

// create makes a new object name in n with build, which creates it as
// (dirfd, name) without following links; then sets owner and mode and
// returns its Node. Over a whiteout the object is built in the work
// directory and swapped in, and a directory is made opaque.
// size is what the new object's st_size will be (a symlink's target
// length), for the quota (quota.go).
func (n *Node) create(name string, mode uint32, size int64, o Owner, build func(dirfd int, name string) error) (*Node, error) {
	u := n.u
	pfd, err := n.upperDirFor(name)
	if err != nil {
		return nil, err
	}
	defer u.namespaceChanged()
	u.nsMu.Lock()
	slot, err := n.slotFor(pfd, name)
	if err == nil {
		err = u.createCounted(slot, name, u.newObjectUsage(mode&unix.S_IFMT, size), func() error {
			return u.createLocked(slot, name, mode, o, build)
		})
	}
	u.nsMu.Unlock()
	if err != nil {
		return nil, err
	}
	return n.Lookup(name)
}

// createLocked is create's change of the upper layer. Call with nsMu held.
func (u *Union) createLocked(slot upperSlot, name string, mode uint32, o Owner, build func(dirfd int, name string) error) error {
	isDir := mode&unix.S_IFMT == unix.S_IFDIR
	if !slot.whiteout {
		if err := build(slot.dirfd, name); err != nil {
			return err
		}
		if err := u.setNewOwner(slot.dirfd, name, mode, o); err != nil {
			removeAt(slot.dirfd, name, isDir)
			return err
		}
		return nil
	}
	tmp := workName()
	if err := build(u.work, tmp); err != nil {
		return err
	}
	if err := u.setNewOwner(u.work, tmp, mode, o); err != nil {
		removeWork(u.work, tmp)
		return err
	}
	if isDir {
		if err := u.setOpaqueAt(u.work, tmp); err != nil {
			removeWork(u.work, tmp)
			return err
		}
	}
	return u.replaceWhiteout(tmp, slot.dirfd, name, isDir)
}

// replaceWhiteout moves the work object tmp over the whiteout at name in
// dirfd, atomically: a directory cannot be renamed over a non-directory, so
// it swaps places with the whiteout, which is then removed.
func (u *Union) replaceWhiteout(tmp string, dirfd int, name string, isDir bool) error {
	if !isDir {
		if err := unix.Renameat(u.work, tmp, dirfd, name); err != nil {
			removeWork(u.work, tmp)
			return err
		}
		return nil
	}
	if err := unix.Renameat2(u.work, tmp, dirfd, name, unix.RENAME_EXCHANGE); err != nil {
		removeWork(u.work, tmp)
		return err
	}
	removeWork(u.work, tmp)
	return nil
}

func (u *Union) setOpaqueAt(dirfd int, name string) error {
	fd, err := openPathAt(dirfd, name)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return whiteout.SetOpaque(fd, u.ns)
}

// setNewOwner gives a just-created object its owner and exact mode (the
// process umask and chown's clearing of setuid would otherwise change it).
func (u *Union) setNewOwner(dirfd int, name string, mode uint32, o Owner) error {
	typ := mode & unix.S_IFMT
	perm := mode & 0o7777
	if typ == unix.S_IFLNK {
		return u.storeOwner(objAt(dirfd, name), typ, &o.UID, &o.GID, nil, ownerOfNew)
	}
	fd, err := openPathAt(dirfd, name)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return u.storeOwner(objPath(fd), typ, &o.UID, &o.GID, &perm, ownerOfNew)
}

func removeAt(dirfd int, name string, isDir bool) {
	if isDir {
		unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
		return
	}
	unix.Unlinkat(dirfd, name, 0)
}

// Create makes a regular file and opens it with flags (O_CREAT and O_EXCL
// are implied). EEXIST if the name exists.
func (n *Node) Create(name string, flags int, mode uint32, o Owner) (*Node, *File, error) {
	u := n.u
	mode = unix.S_IFREG | mode&0o7777
	openFlags := flags & openFlagsPassed &^ unix.O_TRUNC
	pfd, err := n.upperDirFor(name)
	if err != nil {
		return nil, nil, err
	}
	defer u.namespaceChanged()
	made := u.initialPerm(mode, o)
	u.nsMu.Lock()
	// The common case, in as few host calls as the result needs: O_EXCL
	// says whether the upper has the name. Otherwise look first: a lower
	// name (EEXIST unless a whiteout hides it), a quota (a taken name
	// answers EEXIST, not EDQUOT), or an upper name taken by a whiteout
	// to replace or by an object.
	if u.quota.q == nil && !n.lowerPositive(name) {
		fd, opath, mkErr := u.makeFile(pfd, name, openFlags, made)
		if mkErr != unix.EEXIST {
			u.nsMu.Unlock()
			return n.adoptCreated(pfd, name, fd, opath, openFlags, mode, o, mkErr)
		}
	}
	slot, err := n.slotFor(pfd, name)
	if err != nil {
		u.nsMu.Unlock()
		return nil, nil, err
	}
	if !slot.whiteout {
		// The descriptor the file is created with is the one the
		// client uses.
		fd, opath, err := u.makeFile(pfd, name, openFlags, made)
		u.nsMu.Unlock()
		return n.adoptCreated(pfd, name, fd, opath, openFlags, mode, o, err)
	}
	// Replacing a marker takes the work directory; not the common case.
	err = u.createCounted(slot, name, u.newObjectUsage(unix.S_IFREG, 0), func() error {
		return u.createLocked(slot, name, mode, o, func(dirfd int, name string) error {
			fd, err := unix.Openat(dirfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
			if err != nil {
				return err
			}
			return unix.Close(fd)
		})
	})
	u.nsMu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	c, err := n.Lookup(name)
	if err != nil {
		return nil, nil, err
	}
	f, err := c.Open(openFlags)
	if err != nil {
		c.Release()
		return nil, nil, err
	}
	return c, f, nil
}

// initialPerm is the mode a new regular file is made with, before it has
// its owner (adoptCreated). Normally 0600, so that nobody but the server
// can open it before then. When the owner asked for is the server's own,
// its final permission bits at once: its fstat then says whether anything
// is left to change (the umask or a default ACL may have taken bits; a
// setgid directory may have given another group, which could open the
// new, empty file before the chown: the group the kernel itself gives
// files made in that directory).
func (u *Union) initialPerm(mode uint32, o Owner) uint32 {
	perm := mode & 0o7777
	if u.ownership == Passthrough && o.UID == u.euid && o.GID == u.egid && perm&^0o777 == 0 {
		return perm
	}
	return 0o600
}

// makeFile makes the regular file name in the upper directory pfd, where
// nothing is (EEXIST, having made nothing, if something is), with mode
// perm, opened with openFlags; it returns that descriptor and an O_PATH
// one of the same file (for its Node). Call with nsMu held: the second
// open, by name, then finds the very file the first made. If that second
// open fails, the first descriptor is returned with the error, for the
// caller to close and remove the file (without nsMu: removeCounted).
func (u *Union) makeFile(pfd int, name string, openFlags int, perm uint32) (fd, opath int, err error) {
	err = u.createCounted(upperSlot{dirfd: pfd}, name, u.newObjectUsage(unix.S_IFREG, 0), func() error {
		fd, err = unix.Openat(pfd, name, openFlags|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		return err
	})
	if err != nil {
		return -1, -1, err
	}
	if opath, err = openPathAt(pfd, name); err != nil {
		return fd, -1, err
	}
	return fd, opath, nil
}

// adoptCreated takes what makeFile returned for name in the upper
// directory pfd: on success it gives the file its owner and mode and
// returns its Node and File; on failure (makeErr or its own) it closes
// what was opened, removes the file if it was made, and returns the error.
func (n *Node) adoptCreated(pfd int, name string, fd, opath, openFlags int, mode uint32, o Owner, makeErr error) (*Node, *File, error) {
	u := n.u
	err := makeErr
	perm := mode & 0o7777
	var st unix.Stat_t
	if err == nil {
		err = fstat(fd, &st)
	}
	if err == nil && !u.ownerStored(&st, o.UID, o.GID, perm) {
		err = u.storeOwner(objOpen(fd), unix.S_IFREG, &o.UID, &o.GID, &perm, ownerOfNew)
	}
	if err != nil {
		if opath >= 0 {
			unix.Close(opath)
		}
		if fd >= 0 {
			unix.Close(fd)
			u.removeCounted(pfd, name, false)
		}
		return nil, nil, err
	}
	c := &Node{u: u, upper: opath, name: name, typ: unix.S_IFREG, id: u.idOf(&st), parent: n.Retain()}
	c.upperDev, c.upperIno = st.Dev, st.Ino
	c.refs.Store(1)
	c = u.nodes.share(c)
	return c, &File{node: c.Retain(), fd: fd, flags: openFlags}, nil
}

// Mkdir makes a directory.
func (n *Node) Mkdir(name string, mode uint32, o Owner) (*Node, error) {
	return n.create(name, unix.S_IFDIR|mode&0o7777, 0, o, func(dirfd int, name string) error {
		return unix.Mkdirat(dirfd, name, 0o700)
	})
}

// Symlink makes a symbolic link name pointing to target. The target is
// data: the union never follows it.
func (n *Node) Symlink(name, target string, o Owner) (*Node, error) {
	switch {
	case target == "":
		return nil, unix.ENOENT
	case len(target) >= 4096:
		return nil, unix.ENAMETOOLONG
	}
	return n.create(name, unix.S_IFLNK|0o777, int64(len(target)), o, func(dirfd int, name string) error {
		return unix.Symlinkat(target, dirfd, name)
	})
}

// Mknod makes a fifo, socket, device node or empty regular file; mode
// carries the type. Device nodes need the server to be privileged (EPERM
// otherwise), as mknod(2).
func (n *Node) Mknod(name string, mode uint32, rdev uint64, o Owner) (*Node, error) {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFCHR, unix.S_IFBLK, unix.S_IFREG:
	case 0:
		mode |= unix.S_IFREG
	default:
		return nil, unix.EINVAL
	}
	if mode&unix.S_IFMT == unix.S_IFCHR && rdev == 0 {
		// A 0/0 character device is a whiteout to overlayfs: the union
		// would hide it. Linux overlayfs refuses it the same way.
		return nil, unix.EPERM
	}
	return n.create(name, mode, 0, o, func(dirfd int, name string) error {
		return unix.Mknodat(dirfd, name, mode&unix.S_IFMT|0o600, int(rdev))
	})
}

// Link makes name in n a new hard link to target, copying target up first.
// Directories cannot be linked (EPERM).
func (n *Node) Link(target *Node, name string) (*Node, error) {
	u := n.u
	pfd, err := n.upperDirFor(name)
	if err != nil {
		return nil, err
	}
	defer u.namespaceChanged()
	// As link(2): an existing name first, then a directory target; and a
	// link that fails copies nothing up.
	if err := n.slotChecked(pfd, name); err != nil {
		return nil, err
	}
	if target.typ == unix.S_IFDIR {
		return nil, unix.EPERM
	}
	tfd, err := target.copyUp()
	if err != nil {
		return nil, err
	}
	if target.typ == unix.S_IFREG && target.stillMetacopy() {
		// The new name must find the data too: an absolute redirect,
		// as overlayfs's ovl_set_link_redirect.
		u.nsMu.Lock()
		err := u.setRedirect(target, tfd, "", false)
		u.nsMu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	link := func(dirfd int, name string) error {
		// Through /proc so that no capability is needed (AT_EMPTY_PATH
		// wants CAP_DAC_READ_SEARCH) and the very object is linked.
		return unix.Linkat(unix.AT_FDCWD, procPath(tfd), dirfd, name, unix.AT_SYMLINK_FOLLOW)
	}
	u.nsMu.Lock()
	slot, err := n.slotFor(pfd, name)
	if err == nil {
		// A new name of an inode the upper has already: no new inode.
		err = u.createCounted(slot, name, usage{}, func() error {
			if !slot.whiteout {
				return link(pfd, name)
			}
			tmp := workName()
			if err := link(u.work, tmp); err != nil {
				return err
			}
			return u.replaceWhiteout(tmp, pfd, name, false)
		})
	}
	u.nsMu.Unlock()
	if err != nil {
		return nil, err
	}
	return n.Lookup(name)
}
