package union

import (
	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// Metadata-only copy-up (Options.Metacopy, overlayfs's metacopy=on). A
// change that keeps a lower regular file's data (owner, mode, times,
// xattrs, rename, link) copies only its metadata: the upper file gets the
// lower's size, no data, and the marker whiteout.IsMetacopy reads. Lookups
// then find the data below by the file's name, or by its redirect once it
// was renamed (a rename writes one as for directories) or linked (an
// absolute one), and serve it from there: reads go to the lower data,
// attributes come from the upper file (blocks from the data). The first
// open for writing or truncate copies the data into the upper file in
// place and then removes the marker, as overlayfs does: a crash before the
// marker is gone leaves a metadata-only copy that still reads the lower
// data. A metadata-only copy whose data is nowhere answers EIO, and with
// Options.Metacopy off, following one to its data is refused (EPERM),
// both as in overlayfs.

// dataFd returns the descriptor of the object that holds n's data: the
// last lower object of a metadata-only copy, else objFd.
func (n *Node) dataFd() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.metacopy && len(n.lowers) > 0 {
		return n.lowers[len(n.lowers)-1].fd
	}
	if n.upper >= 0 {
		return n.upper
	}
	if len(n.lowers) > 0 {
		return n.lowers[0].fd
	}
	return -1
}

// stillMetacopy reports whether n is a metadata-only copy, looking again
// at its upper file's marker: the Node of another name of the same upper
// file (a hard link made by Link) may have copied the data in since.
func (n *Node) stillMetacopy() bool {
	n.mu.Lock()
	mc, up := n.metacopy, n.upper
	n.mu.Unlock()
	if !mc || up < 0 {
		return mc
	}
	if still, err := whiteout.IsMetacopy(up, n.u.ns); err == nil && !still {
		n.mu.Lock()
		n.metacopy = false
		n.mu.Unlock()
		return false
	}
	return true
}

// adoptsMetacopy reports whether the upper object fd, which a Node of type
// typ adopts from another Node's copy-up, is a metadata-only copy.
func (u *Union) adoptsMetacopy(typ uint32, fd int) bool {
	if typ != unix.S_IFREG || !u.metacopy {
		return false
	}
	mc, err := whiteout.IsMetacopy(fd, u.ns)
	return err == nil && mc
}

// copyInData gives the metadata-only copy of n its data (or, empty, none:
// it is truncated to nothing), then removes the marker. Serialized with
// the object's other copy-ups.
func (n *Node) copyInData(empty bool) (int, error) {
	u := n.u
	unlock := u.copyups.lock(n.id)
	defer unlock()
	up := n.objFd()
	if !n.stillMetacopy() {
		return up, nil
	}
	w, err := reopen(up, unix.O_WRONLY)
	if err != nil {
		return -1, err
	}
	defer unix.Close(w)
	if empty {
		err = u.resize(up, func(int64) int64 { return 0 }, func() error { return unix.Ftruncate(w, 0) })
	} else {
		err = copyDataFrom(n.dataFd(), w)
	}
	if err == nil {
		// The data is on disk before the marker goes (the crash promise).
		err = unix.Fdatasync(w)
	}
	if err == nil {
		err = whiteout.ClearMetacopy(up, u.ns)
	}
	if err != nil {
		return -1, &pathError{op: "copy up data of", path: n.Path(), err: err}
	}
	n.mu.Lock()
	n.metacopy = false
	n.mu.Unlock()
	return up, nil
}

// copyDataFrom copies the whole of the lower file dataFd (O_PATH) into the
// open file w, which has its size already.
func copyDataFrom(dataFd, w int) error {
	r, err := reopen(dataFd, unix.O_RDONLY|unix.O_NOATIME)
	if err == unix.EPERM {
		r, err = reopen(dataFd, unix.O_RDONLY)
	}
	if err != nil {
		return err
	}
	defer unix.Close(r)
	var st unix.Stat_t
	if err := unix.Fstat(r, &st); err != nil {
		return err
	}
	return copyData(r, w, st.Size)
}

// pathError is an errno with the operation and the union path, for the
// messages a human reads; errors.As still finds the errno.
type pathError struct {
	op, path string
	err      error
}

func (e *pathError) Error() string { return e.op + " " + e.path + ": " + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }
