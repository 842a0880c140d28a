package union

import (
	"fmt"

	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// Removing names: unlink and rmdir, with whiteouts where a lower layer
// still has the name (see dir.go).

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
	c, err := n.lookupUnlinkable(name, dir)
	if err != nil {
		return err
	}
	defer c.Release()
	if err := n.unlinkLocked(pfd, name); err != nil {
		return err
	}
	// Its holders keep what they hold; the name now names something else.
	u.nodes.unhash(c)
	return nil
}

// unlinkable checks that name in n can be unlinked as dir says, and that a
// directory is empty as merged. Under nsMu its answer holds for the change
// that follows.
func (n *Node) unlinkable(name string, dir bool) error {
	c, err := n.lookupUnlinkable(name, dir)
	if err == nil {
		c.Release()
	}
	return err
}

// lookupUnlinkable is unlinkable that returns the Node of name (a new
// reference) when it can be unlinked.
func (n *Node) lookupUnlinkable(name string, dir bool) (c *Node, err error) {
	c, err = n.Lookup(name)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.Release()
			c = nil
		}
	}()
	isDir := c.typ == unix.S_IFDIR
	switch {
	case dir && !isDir:
		return c, unix.ENOTDIR
	case !dir && isDir:
		return c, unix.EISDIR
	case n.u.upper == nil:
		return c, unix.EROFS
	case isDir:
		empty, err := c.isEmptyMerged()
		if err != nil {
			return c, err
		}
		if !empty {
			return c, unix.ENOTEMPTY
		}
	}
	return c, nil
}

// unlinkLocked removes name from the upper directory pfd of n, leaving a
// whiteout where a lower layer still has the name. Call with nsMu held,
// after unlinkable.
func (n *Node) unlinkLocked(pfd int, name string) error {
	needWhiteout := n.lowerPositive(name)
	return n.u.replaceCounted(pfd, name, needWhiteout, []int{pfd}, func() error {
		return n.unlinkHost(pfd, name, needWhiteout)
	})
}

// unlinkHost is unlinkLocked's change of the upper layer.
func (n *Node) unlinkHost(pfd int, name string, needWhiteout bool) error {
	u := n.u
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
