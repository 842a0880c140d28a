package union

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// Ownership: how the owner and mode a client sees are kept on the host.
// Every path that gives an object an owner or a mode (SetAttr, the create
// calls, copy-up) goes through storeOwner, and every reader through
// shownOwner, so the policy is here and nowhere else:
//
//   - Passthrough (as root): the host object has the owner and mode the
//     client sees.
//   - MappedXattr (unprivileged): the host object belongs to the server's
//     user and keeps owner access in its mode, so that the server can use
//     it; the owner and mode the client sees are in QEMU's mapped-xattr
//     format, user.virtfs.uid, .gid, .mode (4-byte native-endian integers),
//     which the union hides from clients. Linux keeps no user.* xattrs on
//     symbolic links, FIFOs, sockets and devices: those show their host
//     owner and mode (as in QEMU's mapped-xattr mode).
//
// Squashing (every client's owner replaced by one) is a frontend's rule
// for untrusted clients (Squash, squash.go): p9srv and qemu/virtfs apply
// it to the identity before it reaches the union.

const (
	mappedUID  = mappedXattrPrefix + "uid"
	mappedGID  = mappedXattrPrefix + "gid"
	mappedMode = mappedXattrPrefix + "mode"
)

// hostObj names a host object for the ownership and origin calls: by an
// open descriptor (the f* calls), an O_PATH one (through /proc/self/fd),
// or, for a symbolic link (which a /proc/self/fd path would follow), by
// its name in a directory.
type hostObj struct {
	fd    int // -1 when named by dirfd and name
	open  bool
	dirfd int
	name  string
}

func objOpen(fd int) hostObj               { return hostObj{fd: fd, open: true, dirfd: -1} }
func objPath(fd int) hostObj               { return hostObj{fd: fd, dirfd: -1} }
func objAt(dirfd int, name string) hostObj { return hostObj{fd: -1, dirfd: dirfd, name: name} }

func (o hostObj) setxattr(name string, v []byte) error {
	switch {
	case o.open:
		return unix.Fsetxattr(o.fd, name, v, 0)
	case o.fd >= 0:
		return unix.Setxattr(procPath(o.fd), name, v, 0)
	}
	return unix.Lsetxattr(procPathAt(o.dirfd, o.name), name, v, 0)
}

func (o hostObj) chown(uid, gid int) error {
	if o.fd >= 0 {
		return unix.Fchownat(o.fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
	}
	return unix.Fchownat(o.dirfd, o.name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}

func (o hostObj) chmod(mode uint32) error {
	switch {
	case o.open:
		return unix.Fchmod(o.fd, mode)
	case o.fd >= 0:
		return unix.Chmod(procPath(o.fd), mode)
	}
	return unix.Fchmodat(o.dirfd, o.name, mode, 0)
}

// ownerChange says why storeOwner is called.
type ownerChange int

const (
	// ownerSetByClient: a client's chown or chmod; every refusal is its
	// answer.
	ownerSetByClient ownerChange = iota
	// ownerOfNew: a new object or a copy. An unprivileged server cannot
	// give a host object away: a refused chown leaves the server's owner
	// (as for objects that keep no mapped xattrs) instead of failing.
	ownerOfNew
)

// storeOwner gives the host object o, of type typ (S_IFMT bits), the owner
// and mode a client is to see; nil fields are left as they are. The owner
// comes first: a chown on the host clears setuid and file capabilities.
// Symbolic links have no mode of their own.
func (u *Union) storeOwner(o hostObj, typ uint32, uid, gid, mode *uint32, why ownerChange) error {
	mapped := u.ownership == MappedXattr && keepsMappedXattrs(typ)
	if uid != nil || gid != nil {
		if mapped {
			if err := setMapped(o, uid, gid, nil); err != nil {
				return err
			}
		} else {
			h := func(p *uint32) int {
				if p == nil {
					return -1
				}
				return int(*p)
			}
			err := o.chown(h(uid), h(gid))
			if err != nil && !(why == ownerOfNew && !u.privileged && err == unix.EPERM) {
				return err
			}
		}
	}
	if mode == nil || typ == unix.S_IFLNK {
		return nil
	}
	if err := o.chmod(u.hostMode(*mode, typ)); err != nil {
		return err
	}
	if mapped {
		return setMapped(o, nil, nil, mode)
	}
	return nil
}

// ownerStored reports whether the host object whose fstat is cur already
// has what storeOwner would give it for the owner uid:gid and the mode:
// where owners and modes pass through, the same owner and host mode.
// Mapped owners live in xattrs, which it does not look for (false).
func (u *Union) ownerStored(cur *unix.Stat_t, uid, gid, mode uint32) bool {
	typ := cur.Mode & unix.S_IFMT
	if u.ownership == MappedXattr && keepsMappedXattrs(typ) {
		return false
	}
	return cur.Uid == uid && cur.Gid == gid && (typ == unix.S_IFLNK || cur.Mode&0o7777 == u.hostMode(mode, typ))
}

// keepsMappedXattrs reports whether Linux lets objects of type typ carry
// user.* xattrs (regular files and directories only).
func keepsMappedXattrs(typ uint32) bool { return typ == unix.S_IFREG || typ == unix.S_IFDIR }

// shownOwner replaces, in a, the owner and mode the host object at the
// descriptor fd has with those a client is to see.
func (u *Union) shownOwner(fd int, a *Attr) {
	if u.ownership != MappedXattr || !keepsMappedXattrs(a.Mode&unix.S_IFMT) {
		return
	}
	var b [4]byte
	p := procPath(fd)
	if sz, err := unix.Getxattr(p, mappedUID, b[:]); err == nil && sz == 4 {
		a.UID = binary.NativeEndian.Uint32(b[:])
	}
	if sz, err := unix.Getxattr(p, mappedGID, b[:]); err == nil && sz == 4 {
		a.GID = binary.NativeEndian.Uint32(b[:])
	}
	if sz, err := unix.Getxattr(p, mappedMode, b[:]); err == nil && sz == 4 {
		a.Mode = a.Mode&unix.S_IFMT | binary.NativeEndian.Uint32(b[:])&0o7777
	}
}

// setMapped records owner and mode in the mapped xattrs of o; nil fields
// are left as they are.
func setMapped(o hostObj, uid, gid, mode *uint32) error {
	set := func(name string, v uint32) error {
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], v)
		return o.setxattr(name, b[:])
	}
	if uid != nil {
		if err := set(mappedUID, *uid); err != nil {
			return err
		}
	}
	if gid != nil {
		if err := set(mappedGID, *gid); err != nil {
			return err
		}
	}
	if mode != nil {
		return set(mappedMode, *mode&0o7777)
	}
	return nil
}

// hostMode is the mode given to a host object of type typ: as asked when
// owners and modes pass through (or the object keeps no mapped xattrs, so
// its host mode is what clients see), else with owner access kept so the
// server can use it.
func (u *Union) hostMode(mode, typ uint32) uint32 {
	mode &= 0o7777
	if u.ownership != MappedXattr || !keepsMappedXattrs(typ) {
		return mode
	}
	if typ == unix.S_IFDIR {
		return mode&0o777 | 0o700
	}
	return mode&0o777 | 0o600
}
