package union

import (
	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// Moving names: rename (see dir.go). A directory with lower parts is moved
// by writing a redirect on its upper copy (redirect.go) when the union was
// opened with RedirectOn, and not moved (EXDEV) otherwise.

// Rename moves oldName in n to newName in newDir, replacing what newName
// names there under rename(2)'s rules. A directory that has lower parts
// gets a redirect (RedirectOn) or cannot be moved (EXDEV; mv then copies).
// The source's Node (shared by all its holders) moves with it.
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
	if srcDir && n.u.redirectDir != RedirectOn && src.hasLowers() {
		return p, unix.EXDEV
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
	defer func() {
		if done && err == nil {
			// Every holder of the source's Node sees it under its new
			// name; the name it replaced no longer names that object.
			if p.dst != nil && p.dst != p.src {
				u.nodes.unhash(p.dst)
			}
			u.nodes.move(p.src, newDir, newName)
		}
	}()
	sfd, _, _, _ := p.src.state()
	opfd, _, _, _ := n.state()
	npfd, _, _, _ := newDir.state()
	if sfd < 0 || opfd < 0 || npfd < 0 {
		return false, unix.ESTALE
	}
	srcDir := p.src.typ == unix.S_IFDIR
	srcNeedsWhiteout := n.lowerPositive(oldName)
	switch {
	case (srcDir && p.src.hasLowers()) || (p.src.typ == unix.S_IFREG && p.src.stillMetacopy()):
		// Its lower parts (a metadata-only copy's data) are found by
		// the redirect from now on, not by its new name.
		if err := u.setRedirect(p.src, sfd, oldName, n.id == newDir.id); err != nil {
			return true, err
		}
	case srcDir && newDir.lowerPositive(newName):
		// Moved over a name a lower layer has: nothing below may merge in.
		if err := whiteout.SetOpaque(sfd, u.ns); err != nil {
			return true, err
		}
	}
	return true, u.replaceCounted(npfd, newName, srcNeedsWhiteout, []int{opfd, npfd}, func() error {
		return u.renameHost(opfd, oldName, npfd, newName, srcDir, srcNeedsWhiteout)
	})
}

// renameHost is renameLocked's change of the upper layer: it renames
// oldName in opfd to newName in npfd, replacing what is there (a whiteout,
// or an empty-as-merged directory), and leaves a whiteout at the old name
// if srcNeedsWhiteout.
func (u *Union) renameHost(opfd int, oldName string, npfd int, newName string, srcDir, srcNeedsWhiteout bool) error {
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
				return err
			}
			err = u.removeWhiteoutsIn(fd)
			unix.Close(fd)
			if err != nil {
				return err
			}
		}
	}
	switch {
	case dstWhiteout && srcDir:
		// Swap: the whiteout lands where the source was.
		if err := unix.Renameat2(opfd, oldName, npfd, newName, unix.RENAME_EXCHANGE); err != nil {
			return err
		}
		if !srcNeedsWhiteout {
			return unix.Unlinkat(opfd, oldName, 0)
		}
		return whiteout.NoteWhiteout(opfd, u.whiteoutFormat, u.ns)
	case srcNeedsWhiteout && u.whiteoutFormat == whiteout.DeviceWhiteouts:
		return unix.Renameat2(opfd, oldName, npfd, newName, unix.RENAME_WHITEOUT)
	case srcNeedsWhiteout:
		if err := unix.Renameat(opfd, oldName, npfd, newName); err != nil {
			return err
		}
		if err := whiteout.Make(opfd, oldName, u.whiteoutFormat, u.ns); err != nil {
			return err
		}
		return whiteout.NoteWhiteout(opfd, u.whiteoutFormat, u.ns)
	default:
		return unix.Renameat(opfd, oldName, npfd, newName)
	}
}

// hasLowers reports whether n has objects in lower layers.
func (n *Node) hasLowers() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.lowers) > 0
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
