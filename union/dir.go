package union

import (
	"fmt"

	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// This file holds the namespace changes: create, link, unlink, rename. Each
// follows overlayfs: a name that exists in a lower layer is hidden with a
// whiteout when removed; a directory made where a whiteout was is opaque;
// objects are built in the work directory and renamed into place whenever
// they must replace a marker.
//
// Locking: each change first copies up what it needs (copy-ups lock
// themselves), then takes Union.nsMu and, under it, looks again at what the
// names are, checks, and changes the upper layer. So a check and the change
// it allows are never separated by another change (two exclusive creates,
// an rmdir and a create inside the directory). Nothing under nsMu copies up
// or blocks for long.

// lowerPositive reports whether a lower layer below the directory n still
// shows name, i.e. whether removing name from the upper layer would let a
// lower object reappear.
func (n *Node) lowerPositive(name string) bool {
	_, lowers, _, _ := n.state()
	if len(lowers) == 0 {
		return false
	}
	probe := &Node{u: n.u, upper: -1, name: name}
	found, _ := probe.fill(-1, lowers)
	probe.closeFds()
	return found
}

// upperSlot says what the upper directory has at a name about to be
// created: nothing, or a whiteout to replace.
type upperSlot struct {
	dirfd    int
	whiteout bool
}

// upperDirFor checks that name could be made in the directory n and copies
// n up, returning its upper directory.
func (n *Node) upperDirFor(name string) (int, error) {
	if err := checkName(name); err != nil {
		return -1, err
	}
	if n.typ != unix.S_IFDIR {
		return -1, unix.ENOTDIR
	}
	if n.u.upper == nil {
		return -1, unix.EROFS
	}
	return n.copyUp()
}

// slotFor says whether name can be made in n, whose upper directory is
// pfd: EEXIST if the union shows the name. Call with nsMu held.
func (n *Node) slotFor(pfd int, name string) (upperSlot, error) {
	var st unix.Stat_t
	switch err := lstatAt(pfd, name, &st); {
	case err == nil:
		if n.u.isWhiteout(pfd, name, &st) {
			return upperSlot{dirfd: pfd, whiteout: true}, nil
		}
		return upperSlot{}, unix.EEXIST
	case err != unix.ENOENT:
		return upperSlot{}, err
	}
	if n.lowerPositive(name) {
		return upperSlot{}, unix.EEXIST
	}
	return upperSlot{dirfd: pfd}, nil
}

// slotChecked is slotFor under nsMu, for checks that must come before a
// copy-up (link(2) answers EEXIST before anything else).
func (n *Node) slotChecked(pfd int, name string) error {
	n.u.nsMu.Lock()
	defer n.u.nsMu.Unlock()
	_, err := n.slotFor(pfd, name)
	return err
}

// create makes a new object name in n with build, which creates it as
// (dirfd, name) without following links; then sets owner and mode and
// returns its Node. Over a whiteout the object is built in the work
// directory and swapped in, and a directory is made opaque.
func (n *Node) create(name string, mode uint32, o Owner, build func(dirfd int, name string) error) (*Node, error) {
	u := n.u
	pfd, err := n.upperDirFor(name)
	if err != nil {
		return nil, err
	}
	defer u.namespaceChanged()
	u.nsMu.Lock()
	slot, err := n.slotFor(pfd, name)
	if err == nil {
		err = u.createLocked(slot, name, mode, o, build)
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
	isLink := mode&unix.S_IFMT == unix.S_IFLNK
	if u.ownership == Passthrough {
		if err := unix.Fchownat(dirfd, name, int(o.UID), int(o.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	if isLink {
		return nil
	}
	fd, err := openPathAt(dirfd, name)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Chmod(procPath(fd), u.hostMode(mode, mode&unix.S_IFMT == unix.S_IFDIR)); err != nil {
		return err
	}
	if u.ownership == MappedXattr {
		perm := mode & 0o7777
		err := setMapped(fd, &o.UID, &o.GID, &perm)
		if typ := mode & unix.S_IFMT; typ != unix.S_IFREG && typ != unix.S_IFDIR {
			// Linux refuses user.* xattrs on FIFOs, sockets and devices:
			// these show the server's owner (a known limit of the
			// unprivileged mode, as of QEMU's mapped-xattr mode for them).
			return nil
		}
		return err
	}
	return nil
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
	u.nsMu.Lock()
	slot, err := n.slotFor(pfd, name)
	if err != nil {
		u.nsMu.Unlock()
		return nil, nil, err
	}
	if slot.whiteout {
		// Replacing a marker takes the work directory; not the common case.
		err := u.createLocked(slot, name, mode, o, func(dirfd int, name string) error {
			fd, err := unix.Openat(dirfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
			if err != nil {
				return err
			}
			return unix.Close(fd)
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
	// The common case, in as few host calls as the result needs: the
	// descriptor the file is created with is the one the client uses.
	fd, err := unix.Openat(pfd, name, openFlags|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	u.nsMu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	c, err := n.adoptCreated(pfd, name, fd, mode, o)
	if err != nil {
		unix.Close(fd)
		unix.Unlinkat(pfd, name, 0)
		return nil, nil, err
	}
	return c, &File{node: c.Retain(), fd: fd, flags: openFlags}, nil
}

// adoptCreated gives the file just created as name in the upper directory
// dirfd (open at fd) its owner and mode, and returns its Node.
func (n *Node) adoptCreated(dirfd int, name string, fd int, mode uint32, o Owner) (*Node, error) {
	u := n.u
	if u.ownership == Passthrough {
		if err := unix.Fchown(fd, int(o.UID), int(o.GID)); err != nil {
			return nil, err
		}
	}
	// After the chown, which clears setuid; and whatever the umask said.
	if err := unix.Fchmod(fd, u.hostMode(mode, false)); err != nil {
		return nil, err
	}
	pfd, err := openPathAt(dirfd, name)
	if err != nil {
		return nil, err
	}
	if u.ownership == MappedXattr {
		perm := mode & 0o7777
		if err := setMapped(pfd, &o.UID, &o.GID, &perm); err != nil {
			unix.Close(pfd)
			return nil, err
		}
	}
	var st unix.Stat_t
	if err := fstat(pfd, &st); err != nil {
		unix.Close(pfd)
		return nil, err
	}
	c := &Node{u: u, upper: pfd, name: name, typ: unix.S_IFREG, id: u.idOf(&st), parent: n.Retain()}
	c.refs.Store(1)
	return c, nil
}

// Mkdir makes a directory.
func (n *Node) Mkdir(name string, mode uint32, o Owner) (*Node, error) {
	return n.create(name, unix.S_IFDIR|mode&0o7777, o, func(dirfd int, name string) error {
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
	return n.create(name, unix.S_IFLNK|0o777, o, func(dirfd int, name string) error {
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
	return n.create(name, mode, o, func(dirfd int, name string) error {
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
	link := func(dirfd int, name string) error {
		// Through /proc so that no capability is needed (AT_EMPTY_PATH
		// wants CAP_DAC_READ_SEARCH) and the very object is linked.
		return unix.Linkat(unix.AT_FDCWD, procPath(tfd), dirfd, name, unix.AT_SYMLINK_FOLLOW)
	}
	u.nsMu.Lock()
	slot, err := n.slotFor(pfd, name)
	if err == nil {
		if !slot.whiteout {
			err = link(pfd, name)
		} else {
			tmp := workName()
			if err = link(u.work, tmp); err == nil {
				err = u.replaceWhiteout(tmp, pfd, name, false)
			}
		}
	}
	u.nsMu.Unlock()
	if err != nil {
		return nil, err
	}
	return n.Lookup(name)
}

// Readlink returns a symbolic link's target (EINVAL for other objects).
func (n *Node) Readlink() (string, error) {
	if n.typ != unix.S_IFLNK {
		return "", unix.EINVAL
	}
	n.refreshUpper()
	return readlinkFd(n.objFd())
}

// removeWhiteoutsIn empties an upper directory that is empty as merged:
// it may hold only whiteouts (of names removed from it), and anything else
// found there (made meanwhile, behind the union's back) answers ENOTEMPTY
// rather than being deleted.
func (u *Union) removeWhiteoutsIn(dirfd int) error {
	names, err := readNames(dirfd)
	if err != nil {
		return err
	}
	for _, name := range names {
		var st unix.Stat_t
		if err := lstatAt(dirfd, name, &st); err != nil {
			return err
		}
		if !u.isWhiteout(dirfd, name, &st) {
			return unix.ENOTEMPTY
		}
		if err := unix.Unlinkat(dirfd, name, 0); err != nil {
			return err
		}
	}
	return nil
}

// isEmptyMerged reports whether the directory n lists nothing but "." and
// "..".
func (n *Node) isEmptyMerged() (bool, error) {
	ents, err := n.listMerged()
	if err != nil {
		return false, err
	}
	return len(ents) <= 2, nil
}

// Unlink removes name from the directory n: a directory when dir is set
// (it must be empty as merged: ENOTEMPTY), otherwise a non-directory. If a
// lower layer still has the name, a whiteout hides it.
func (n *Node) Unlink(name string, dir bool) error {
	u := n.u
	defer u.namespaceChanged()
	// The errors a client expects first (ENOENT, ENOTDIR, EISDIR, EROFS,
	// ENOTEMPTY), before anything is copied up.
	if err := n.unlinkable(name, dir); err != nil {
		return err
	}
	pfd, err := n.copyUp()
	if err != nil {
		return err
	}
	u.nsMu.Lock()
	defer u.nsMu.Unlock()
	if err := n.unlinkable(name, dir); err != nil {
		return err
	}
	return n.unlinkLocked(pfd, name)
}

// unlinkable checks that name in n can be unlinked as dir says, and that a
// directory is empty as merged. Under nsMu its answer holds for the change
// that follows.
func (n *Node) unlinkable(name string, dir bool) error {
	c, err := n.Lookup(name)
	if err != nil {
		return err
	}
	defer c.Release()
	isDir := c.typ == unix.S_IFDIR
	switch {
	case dir && !isDir:
		return unix.ENOTDIR
	case !dir && isDir:
		return unix.EISDIR
	case n.u.upper == nil:
		return unix.EROFS
	case isDir:
		empty, err := c.isEmptyMerged()
		if err != nil {
			return err
		}
		if !empty {
			return unix.ENOTEMPTY
		}
	}
	return nil
}

// unlinkLocked removes name from the upper directory pfd of n, leaving a
// whiteout where a lower layer still has the name. Call with nsMu held,
// after unlinkable.
func (n *Node) unlinkLocked(pfd int, name string) error {
	u := n.u
	needWhiteout := n.lowerPositive(name)
	var st unix.Stat_t
	inUpper := lstatAt(pfd, name, &st) == nil && !u.isWhiteout(pfd, name, &st)
	isDir := inUpper && st.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case inUpper && needWhiteout:
		tmp := workName()
		if err := whiteout.Make(u.work, tmp, u.whiteoutFormat, u.ns); err != nil {
			return fmt.Errorf("unlink %s/%s: make whiteout: %w", n.Path(), name, err)
		}
		if isDir {
			// Swap the (whiteouts-only) directory out, then drop it.
			if err := unix.Renameat2(u.work, tmp, pfd, name, unix.RENAME_EXCHANGE); err != nil {
				removeWork(u.work, tmp)
				return err
			}
			removeWork(u.work, tmp)
		} else if err := unix.Renameat(u.work, tmp, pfd, name); err != nil {
			removeWork(u.work, tmp)
			return err
		}
		return whiteout.NoteWhiteout(pfd, u.whiteoutFormat, u.ns)
	case isDir:
		// Upper-only directory: it may still hold whiteouts of names
		// that were removed from it.
		fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		err = u.removeWhiteoutsIn(fd)
		unix.Close(fd)
		if err != nil {
			return err
		}
		return unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR)
	case inUpper:
		return unix.Unlinkat(pfd, name, 0)
	default:
		if err := whiteout.Make(pfd, name, u.whiteoutFormat, u.ns); err != nil {
			return err
		}
		return whiteout.NoteWhiteout(pfd, u.whiteoutFormat, u.ns)
	}
}

// Rename moves oldName in n to newName in newDir, replacing what newName
// names there under rename(2)'s rules. A directory that has lower parts
// cannot be moved (EXDEV: this union writes no redirects; mv copies).
// The caller tells the renamed Nodes with Moved.
func (n *Node) Rename(oldName string, newDir *Node, newName string) error {
	if err := checkName(newName); err != nil {
		return err
	}
	if newDir.typ != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	u := n.u
	defer u.namespaceChanged()
	// Check, copy up what the rename needs, then check again and rename
	// under nsMu. A source that lost its upper copy in between (deleted
	// and made again) starts over.
	for attempt := 0; ; attempt++ {
		p, err := n.renamePlan(oldName, newDir, newName)
		if err != nil || p.nothingToDo {
			p.release()
			return err
		}
		_, err = p.src.copyUp()
		if err == nil {
			_, err = n.copyUp()
		}
		if err == nil {
			_, err = newDir.copyUp()
		}
		p.release()
		if err != nil {
			return err
		}
		u.nsMu.Lock()
		done, err := n.renameLocked(oldName, newDir, newName)
		u.nsMu.Unlock()
		if done || attempt == 2 {
			return err
		}
	}
}

// renamePlan is what the checks of a rename found.
type renamePlan struct {
	src, dst    *Node // dst nil when newName does not exist
	nothingToDo bool  // rename(2) succeeds without changing anything
}

func (p renamePlan) release() {
	if p.src != nil {
		p.src.Release()
	}
	if p.dst != nil {
		p.dst.Release()
	}
}

// renamePlan looks both names up and checks, in the order Linux does so a
// client sees the errno it would see on overlayfs: ancestry (in the VFS),
// types (vfs_rename), then what the union cannot do (EXDEV), then
// emptiness. Under nsMu its answer holds for the change that follows.
func (n *Node) renamePlan(oldName string, newDir *Node, newName string) (renamePlan, error) {
	var p renamePlan
	src, err := n.Lookup(oldName)
	if err != nil {
		return p, err
	}
	p.src = src
	switch dst, err := newDir.Lookup(newName); {
	case err == nil:
		p.dst = dst
	case err != unix.ENOENT:
		return p, err
	}
	dst := p.dst
	if dst != nil && oldName == newName && n.id == newDir.id {
		p.nothingToDo = true // renamed onto itself
		return p, nil
	}
	if dst != nil && src.sameUpperObject(dst) {
		p.nothingToDo = true // hard links to one upper object
		return p, nil
	}
	if n.u.upper == nil {
		return p, unix.EROFS
	}
	srcDir := src.typ == unix.S_IFDIR
	if srcDir && newDir.isDescendantOf(src) {
		return p, unix.EINVAL // a directory moved below itself
	}
	if dst != nil && dst.typ == unix.S_IFDIR && n.isDescendantOf(dst) {
		return p, unix.ENOTEMPTY // replacing a directory above the source
	}
	if dst != nil {
		dstDir := dst.typ == unix.S_IFDIR
		switch {
		case srcDir && !dstDir:
			return p, unix.ENOTDIR
		case !srcDir && dstDir:
			return p, unix.EISDIR
		}
	}
	if srcDir {
		if _, lowers, _, _ := src.state(); len(lowers) > 0 {
			return p, unix.EXDEV
		}
	}
	if dst != nil && dst.typ == unix.S_IFDIR {
		empty, err := dst.isEmptyMerged()
		if err != nil {
			return p, err
		}
		if !empty {
			return p, unix.ENOTEMPTY
		}
	}
	return p, nil
}

// renameLocked checks again and renames in the upper layer. done is false
// when the source turned out not to be copied up (it changed since the
// copy-up), so the caller may start over. Call with nsMu held.
func (n *Node) renameLocked(oldName string, newDir *Node, newName string) (done bool, err error) {
	u := n.u
	p, err := n.renamePlan(oldName, newDir, newName)
	defer p.release()
	if err != nil || p.nothingToDo {
		return true, err
	}
	sfd, _, _, _ := p.src.state()
	opfd, _, _, _ := n.state()
	npfd, _, _, _ := newDir.state()
	if sfd < 0 || opfd < 0 || npfd < 0 {
		return false, unix.ESTALE
	}
	srcDir := p.src.typ == unix.S_IFDIR
	srcNeedsWhiteout := n.lowerPositive(oldName)
	if srcDir && newDir.lowerPositive(newName) {
		// Moved over a name a lower layer has: nothing below may merge in.
		if err := whiteout.SetOpaque(sfd, u.ns); err != nil {
			return true, err
		}
	}
	var st unix.Stat_t
	dstWhiteout := false
	if lstatAt(npfd, newName, &st) == nil {
		if u.isWhiteout(npfd, newName, &st) {
			dstWhiteout = true
		} else if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			// An empty-as-merged directory may hold whiteouts; the host
			// only replaces an empty one.
			fd, err := unix.Openat(npfd, newName, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return true, err
			}
			err = u.removeWhiteoutsIn(fd)
			unix.Close(fd)
			if err != nil {
				return true, err
			}
		}
	}
	switch {
	case dstWhiteout && srcDir:
		// Swap: the whiteout lands where the source was.
		if err := unix.Renameat2(opfd, oldName, npfd, newName, unix.RENAME_EXCHANGE); err != nil {
			return true, err
		}
		if !srcNeedsWhiteout {
			return true, unix.Unlinkat(opfd, oldName, 0)
		}
		return true, whiteout.NoteWhiteout(opfd, u.whiteoutFormat, u.ns)
	case srcNeedsWhiteout && u.whiteoutFormat == whiteout.DeviceWhiteouts:
		return true, unix.Renameat2(opfd, oldName, npfd, newName, unix.RENAME_WHITEOUT)
	case srcNeedsWhiteout:
		if err := unix.Renameat(opfd, oldName, npfd, newName); err != nil {
			return true, err
		}
		if err := whiteout.Make(opfd, oldName, u.whiteoutFormat, u.ns); err != nil {
			return true, err
		}
		return true, whiteout.NoteWhiteout(opfd, u.whiteoutFormat, u.ns)
	default:
		return true, unix.Renameat(opfd, oldName, npfd, newName)
	}
}

// sameUpperObject reports whether n and o are names of one upper inode.
// Lower hard links are not: overlayfs (without its index) copies each name
// up on its own, so they stop being links once changed.
func (n *Node) sameUpperObject(o *Node) bool {
	a, b := n.objFd(), o.objFd()
	n.mu.Lock()
	aUpper := n.upper >= 0
	n.mu.Unlock()
	o.mu.Lock()
	bUpper := o.upper >= 0
	o.mu.Unlock()
	if !aUpper || !bUpper {
		return false
	}
	var sa, sb unix.Stat_t
	if fstat(a, &sa) != nil || fstat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// isDescendantOf reports whether n is a or lies below it in the names the
// Nodes know.
func (n *Node) isDescendantOf(a *Node) bool {
	for c := n; c != nil; {
		if c.id == a.id {
			return true
		}
		c.mu.Lock()
		p := c.parent
		c.mu.Unlock()
		c = p
	}
	return false
}
