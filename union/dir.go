package union

import (
	"golang.org/x/sys/unix"
)

// The namespace changes (create.go, unlink.go, rename.go) share the helpers
// here. Each follows overlayfs: a name that exists in a lower layer is hidden with a
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

// Readlink returns a symbolic link's target (EINVAL for other objects).
func (n *Node) Readlink() (string, error) {
	if n.typ != unix.S_IFLNK {
		return "", unix.EINVAL
	}
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

func (p renamePlan) release() {
	if p.src != nil {
		p.src.Release()
	}
	if p.dst != nil {
		p.dst.Release()
	}
}
