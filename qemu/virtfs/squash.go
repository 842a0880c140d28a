package virtfs

import (
	"context"
	"syscall"

	"github.com/union9p/union9p/union"
)

// Squash makes every object a guest creates or chowns owned by the given
// ids (serve's --squash-uid/--squash-gid, for untrusted guests), and
// refuses device nodes, as p9srv does for its squashed clients: a guest
// then cannot leave a setuid file of another owner, or a device node, in
// the upper. A nil id is not squashed. The zero Squash changes nothing.
type Squash struct {
	UID, GID *uint32
}

func (s Squash) squashed() bool { return s.UID != nil || s.GID != nil }

// owner is o with the squashed ids.
func (s Squash) owner(o union.Owner) union.Owner {
	if s.UID != nil {
		o.UID = *s.UID
	}
	if s.GID != nil {
		o.GID = *s.GID
	}
	return o
}

// setattr squashes the owner a chown asks for.
func (s Squash) setattr(sa *union.SetAttr) {
	if sa.SetUID && s.UID != nil {
		sa.UID = *s.UID
	}
	if sa.SetGID && s.GID != nil {
		sa.GID = *s.GID
	}
}

// mknod refuses device nodes to a squashed guest (EPERM, as a process
// without CAP_MKNOD gets).
func (s Squash) mknod(mode uint32) syscall.Errno {
	if typ := mode & syscall.S_IFMT; s.squashed() && (typ == syscall.S_IFCHR || typ == syscall.S_IFBLK) {
		return syscall.EPERM
	}
	return 0
}

// ownerFor is who owns a new object n makes for the caller of ctx
// (ownerIn, then squashed).
func (n *node) ownerFor(ctx context.Context, dir *union.Node) (union.Owner, bool) {
	o, setgid := ownerIn(ctx, dir)
	return n.t.squash.owner(o), setgid
}
