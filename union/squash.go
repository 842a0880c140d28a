package union

import "golang.org/x/sys/unix"

// Squash is how a frontend treats untrusted clients (serve's
// --squash-uid/--squash-gid): every object they create or chown is owned
// by the squash ids, whatever they ask, and they may not make device
// nodes. A client then cannot leave a setuid file of another owner, or a
// device node whose host device it chose, in the upper. Frontends (p9srv,
// qemu/virtfs) apply it to a client's identity before it reaches the
// union. A nil id is not squashed; the zero Squash changes nothing.
type Squash struct {
	UID, GID *uint32
}

// Squashed reports whether clients are untrusted.
func (s Squash) Squashed() bool { return s.UID != nil || s.GID != nil }

// Owner is o with the squashed ids.
func (s Squash) Owner(o Owner) Owner {
	if s.UID != nil {
		o.UID = *s.UID
	}
	if s.GID != nil {
		o.GID = *s.GID
	}
	return o
}

// SetAttr squashes the owner a chown asks for.
func (s Squash) SetAttr(sa *SetAttr) {
	if sa.SetUID && s.UID != nil {
		sa.UID = *s.UID
	}
	if sa.SetGID && s.GID != nil {
		sa.GID = *s.GID
	}
}

// Mknod refuses a device node (mode carries the type) to a squashed
// client: EPERM, as a process without CAP_MKNOD gets.
func (s Squash) Mknod(mode uint32) error {
	if typ := mode & unix.S_IFMT; s.Squashed() && (typ == unix.S_IFCHR || typ == unix.S_IFBLK) {
		return unix.EPERM
	}
	return nil
}
