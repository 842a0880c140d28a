package union

import (
	"strings"

	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// mappedXattrPrefix is QEMU's mapped-xattr namespace, which holds owners
// and modes when the union runs unprivileged (see owner.go).
const mappedXattrPrefix = "user.virtfs."

// isPrivate reports whether a client may neither see nor change xattr name.
func (u *Union) isPrivate(name string) bool {
	if whiteout.IsPrivateXattr(name) {
		return true
	}
	return u.ownership == MappedXattr && strings.HasPrefix(name, mappedXattrPrefix)
}

func isUserXattr(name string) bool { return strings.HasPrefix(name, "user.") }

// xattrTarget says how to reach the object fd of n for xattr calls: a
// /proc path and whether the l* (no-follow) calls must be used. Symlinks
// are reached through their parent directory in the same layer, since a
// /proc/self/fd link to an O_PATH symlink descriptor is itself a symlink.
func (n *Node) xattrTarget(fd int) (path string, nofollow bool, err error) {
	if n.typ != unix.S_IFLNK {
		return procPath(fd), false, nil
	}
	up, lowers, parent, name := n.state()
	if parent == nil {
		return "", false, unix.EINVAL
	}
	pup, plowers, _, _ := parent.state()
	if fd == up {
		if pup < 0 {
			return "", false, unix.ENOENT
		}
		return procPathAt(pup, name), true, nil
	}
	for _, pl := range plowers {
		if len(lowers) > 0 && pl.layer == lowers[0].layer {
			return procPathAt(pl.fd, name), true, nil
		}
	}
	return "", false, unix.ENOENT
}

// GetXattr returns the value of the extended attribute name. Private names
// answer ENODATA, as if they did not exist.
func (n *Node) GetXattr(name string) ([]byte, error) {
	if n.u.isPrivate(name) {
		return nil, unix.ENODATA
	}
	path, nofollow, err := n.xattrTarget(n.objFd())
	if err != nil {
		return nil, err
	}
	get := unix.Getxattr
	if nofollow {
		get = unix.Lgetxattr
	}
	return getXattrPath(path, name, get)
}

// ListXattr lists the names of n's extended attributes, private ones left
// out.
func (n *Node) ListXattr() ([]string, error) {
	path, nofollow, err := n.xattrTarget(n.objFd())
	if err != nil {
		return nil, err
	}
	list := unix.Listxattr
	if nofollow {
		list = unix.Llistxattr
	}
	names, err := listXattrPath(path, list)
	if err != nil {
		return nil, err
	}
	out := names[:0]
	for _, nm := range names {
		if !n.u.isPrivate(nm) {
			out = append(out, nm)
		}
	}
	return out, nil
}

// SetXattr sets an extended attribute, copying n up first. flags are
// unix.XATTR_CREATE or unix.XATTR_REPLACE or 0. Private names are refused
// with EPERM: a client that could write overlay markers could make the
// union show it any file of the host.
func (n *Node) SetXattr(name string, value []byte, flags int) error {
	if n.u.isPrivate(name) {
		return unix.EPERM
	}
	if name == "" || len(name) > 255 {
		return unix.ERANGE
	}
	fd, err := n.copyUp()
	if err != nil {
		return err
	}
	path, nofollow, err := n.xattrTarget(fd)
	if err != nil {
		return err
	}
	if nofollow {
		return unix.Lsetxattr(path, name, value, flags)
	}
	return unix.Setxattr(path, name, value, flags)
}

// RemoveXattr removes an extended attribute, copying n up first.
func (n *Node) RemoveXattr(name string) error {
	if n.u.isPrivate(name) {
		return unix.EPERM
	}
	// Removing a name that does not exist must not copy up.
	if _, err := n.GetXattr(name); err != nil {
		return err
	}
	fd, err := n.copyUp()
	if err != nil {
		return err
	}
	path, nofollow, err := n.xattrTarget(fd)
	if err != nil {
		return err
	}
	if nofollow {
		return unix.Lremovexattr(path, name)
	}
	return unix.Removexattr(path, name)
}

func getXattrFd(fd int, name string) ([]byte, error) {
	return getXattrPath("", name, func(_, name string, b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) })
}

func listXattrFd(fd int) ([]string, error) {
	return listXattrPath("", func(_ string, b []byte) (int, error) { return unix.Flistxattr(fd, b) })
}

func getXattrPath(path, name string, get func(string, string, []byte) (int, error)) ([]byte, error) {
	size, err := get(path, name, nil)
	if err != nil {
		return nil, err
	}
	for {
		buf := make([]byte, size+64)
		n, err := get(path, name, buf)
		if err == unix.ERANGE {
			if size, err = get(path, name, nil); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func listXattrPath(path string, list func(string, []byte) (int, error)) ([]string, error) {
	size, err := list(path, nil)
	if err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, nil
	}
	for {
		buf := make([]byte, size+256)
		n, err := list(path, buf)
		if err == unix.ERANGE {
			if size, err = list(path, nil); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
}
