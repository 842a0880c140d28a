package union

import (
	"strings"

	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// checkName refuses names that are not a single entry of a directory.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return unix.EINVAL
	case strings.ContainsAny(name, "/\x00"):
		return unix.EINVAL
	case len(name) > 255:
		return unix.ENAMETOOLONG
	}
	return nil
}

// Root returns a new reference to the root of the union.
func (u *Union) Root() (*Node, error) {
	n := &Node{u: u, upper: -1, typ: unix.S_IFDIR}
	n.refs.Store(1)
	if u.upper != nil {
		fd, err := unix.Openat(u.upper.fd, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		n.upper = fd
		if u.upperOpaque(fd) {
			n.setRootID()
			return u.nodes.share(n), nil
		}
	}
	for _, l := range u.lowers {
		fd, err := unix.Openat(l.fd, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			n.Release()
			return nil, err
		}
		lo := lowerObj{layer: l, fd: fd}
		var st unix.Stat_t
		if fstat(fd, &st) == nil {
			lo.names = u.lowerNames.of(&st)
		}
		n.lowers = append(n.lowers, lo)
		if u.lowerOpaque(fd) {
			break
		}
	}
	n.setRootID()
	return u.nodes.share(n), nil
}

// Lookup finds name in the directory n. It returns ENOENT when no layer has
// the name or a whiteout hides it, ENOTDIR when n is not a directory.
func (n *Node) Lookup(name string) (*Node, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if n.typ != unix.S_IFDIR {
		return nil, unix.ENOTDIR
	}
	n.mu.Lock()
	upperDir := n.upper
	lowerDirs := n.lowers
	n.mu.Unlock()

	if upperDir >= 0 {
		if c := n.u.nodes.held(n, name); c != nil {
			if c.stillAt(upperDir, name) {
				return c, nil
			}
			c.Release()
		}
	}
	c := &Node{u: n.u, upper: -1, name: name}
	c.refs.Store(1)
	found, err := c.fill(upperDir, lowerDirs)
	if err != nil || !found {
		c.closeFds()
		if err == nil {
			err = unix.ENOENT
		}
		return nil, err
	}
	if c.redirected && c.aliasesAncestor(n) {
		// A redirect to a directory's own ancestor: refused as the
		// kernel's overlayfs refuses it (its inode for the ancestor is
		// already in use).
		c.closeFds()
		return nil, unix.ESTALE
	}
	c.parent = n.Retain()
	return n.u.nodes.share(c), nil
}

// stillAt reports whether the upper object c was made with (a Node in the
// table at name in the directory upperDir) is still the entry name there.
// Then a lookup would find what c holds, and end in the table at c: the
// Node of an object is kept up to date by every change the union makes
// (a copy-up, a metacopy's data copied, a rename), so there is nothing
// to read again. The one host call is an lstat; a Node whose upper object
// came from a copy-up (upperIno 0) is looked up in full.
func (c *Node) stillAt(upperDir int, name string) bool {
	if c.upperIno == 0 {
		return false
	}
	var st unix.Stat_t
	return lstatAt(upperDir, name, &st) == nil && st.Ino == c.upperIno && st.Dev == c.upperDev
}

// fill looks c.name up in the given parent directories and records what it
// finds in c (which is not yet shared, so needs no lock). The lower layers
// are searched as redirect.go describes.
func (c *Node) fill(upperDir int, lowerDirs []lowerObj) (bool, error) {
	u := c.u
	name := c.name
	q := lowerQuery{path: name}
	stack := lowerDirs
	fromRoot := false // stack is every layer's root (an absolute path)
	needData := false // a metadata-only copy was found, its data not yet
	var st unix.Stat_t
	if upperDir >= 0 {
		err := lstatAt(upperDir, name, &st)
		switch {
		case err == nil:
			if u.isWhiteout(upperDir, name, &st) {
				return false, nil
			}
			if u.isTrap(&st) {
				return false, unix.ELOOP
			}
			fd, err := openPathAt(upperDir, name)
			if err != nil {
				return false, err
			}
			c.upper = fd
			c.upperDev, c.upperIno = st.Dev, st.Ino
			c.typ = st.Mode & unix.S_IFMT
			c.id = u.readOrigin(fd, c.typ == unix.S_IFLNK, upperDir, name)
			if c.id == 0 {
				c.id = u.idOf(&st)
			}
			if c.typ == unix.S_IFREG {
				mc, err := whiteout.IsMetacopy(fd, u.ns)
				if err != nil || !mc {
					return err == nil, err
				}
				if !u.metacopy {
					// Following a metacopy to its data is like following
					// a redirect: refused unless asked for (overlayfs:
					// EPERM, before looking below).
					return false, unix.EPERM
				}
				// Its data is below, found as a directory's parts are.
				c.metacopy, q.wantData, needData = true, true, true
			} else if c.typ != unix.S_IFDIR || u.upperOpaque(fd) {
				return true, nil
			} else {
				q.wantDir = true
			}
			r, err := whiteout.ReadRedirect(fd, u.ns)
			if err != nil {
				return false, err
			}
			if r != "" {
				q.path = r
				if r[0] == '/' {
					stack, fromRoot = u.rootLowers(), true
				}
			}
		case err == unix.ENOENT:
		default:
			return false, err
		}
	}
	for i := 0; i < len(stack); i++ {
		ld := stack[i]
		fd, err := u.lookupLower(ld, &q, &st)
		if err != nil {
			return false, err
		}
		if fd >= 0 && (c.metacopy || q.metacopy) && !u.metacopy {
			// Following a metacopy to its data is like following a
			// redirect: refused unless asked for (overlayfs: EPERM).
			unix.Close(fd)
			return false, unix.EPERM
		}
		switch {
		case fd < 0:
		case q.metacopy && len(c.lowers) > 0:
			// Only the topmost of several metadata-only copies counts.
			unix.Close(fd)
		default:
			lo := lowerObj{layer: ld.layer, fd: fd}
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				lo.names = u.lowerNames.of(&st)
			}
			c.lowers = append(c.lowers, lo)
			if c.typ == 0 {
				c.typ = st.Mode & unix.S_IFMT
				c.id = u.idOf(&st)
				q.wantDir = c.typ == unix.S_IFDIR
				c.metacopy = q.metacopy
				q.wantData = q.metacopy
			}
			if c.metacopy {
				needData = q.metacopy
			}
		}
		if q.stop {
			break
		}
		if q.absolute() && !fromRoot {
			// An absolute redirect met in this layer: the layers below
			// are searched from their roots.
			stack, i, fromRoot = u.rootLowers()[ld.layer.idx:], -1, true
		}
	}
	c.redirected = q.path != name
	if needData {
		// A metadata-only copy whose data is nowhere: never served as
		// an empty file (overlayfs: EIO).
		return false, unix.EIO
	}
	return c.typ != 0, nil
}

// upperOpaque reports whether the upper directory open at fd hides the
// layers below it.
func (u *Union) upperOpaque(fd int) bool { return whiteout.ReadDirState(fd, u.ns).Opaque }

// lowerOpaque reports whether the lower directory open at fd hides the
// layers below it, in any format a lower layer may carry: the overlay
// markers of either namespace (a lower made by an unprivileged overlayfs
// uses user.overlay) or an OCI layer's marker file.
func (u *Union) lowerOpaque(fd int) bool {
	return whiteout.ReadDirState(fd, whiteout.Trusted).Opaque ||
		whiteout.ReadDirState(fd, whiteout.User).Opaque || whiteout.IsOCIOpaque(fd)
}

// dirHasXattrWhiteouts reports whether the directory may hold xattr
// whiteouts in either namespace, so that regular files in it need an xattr
// check.
func (u *Union) dirHasXattrWhiteouts(dirfd int) bool {
	return whiteout.ReadDirState(dirfd, whiteout.Trusted).HasXattrWhiteout ||
		whiteout.ReadDirState(dirfd, whiteout.User).HasXattrWhiteout
}

// isWhiteout reports whether the entry name of dirfd, whose lstat is st,
// is a whiteout in any format. Only empty regular files cost an xattr read.
func (u *Union) isWhiteout(dirfd int, name string, st *unix.Stat_t) bool {
	if whiteout.IsDeviceWhiteout(st) {
		return true
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != 0 {
		return false
	}
	for _, ns := range []whiteout.Namespace{whiteout.Trusted, whiteout.User} {
		if whiteout.ReadDirState(dirfd, ns).HasXattrWhiteout && whiteout.IsWhiteout(dirfd, name, st, ns) {
			return true
		}
	}
	return false
}

// setRootID gives the root its id: that of its topmost directory (the
// root is never copied up, so it carries no origin).
func (n *Node) setRootID() {
	var st unix.Stat_t
	if fstat(n.objFd(), &st) == nil {
		n.id = n.u.idOf(&st)
	}
}
