package p9srv

import (
	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/union9p/union9p/union"
)

// attacher makes the root File of each Tattach.
type attacher struct{ srv *Server }

var _ p9.Attacher = attacher{}

// Attach returns the union's root for the uid of the Tattach being handled.
// The library does not pass the uid; the wire tap recorded it (see the
// package comment). Without it (a frame too malformed to decode) the
// attach is refused.
func (a attacher) Attach() (p9.File, error) {
	r := a.srv.requests.current(msgTattach)
	if r == nil {
		return nil, linux.EINVAL
	}
	root, err := a.srv.cfg.Union.Root()
	if err != nil {
		return nil, errno(err)
	}
	f, err := newFile(a.srv, root, r.attachUID)
	if err != nil {
		root.Release()
		return nil, err
	}
	return f, nil
}

// owner returns who owns an object created by a client whose attach uid
// is uid and whose request carried gid. Squashing overrides both. A client
// that sends no gid gets the group of the directory, as BSD semantics.
func (s *Server) owner(uid uint32, gid p9.GID, dir *union.Node) (union.Owner, error) {
	o := union.Owner{UID: s.squashUID(uid), GID: s.squashGID(uint32(gid))}
	if !gid.Ok() && s.cfg.SquashGID == nil {
		a, err := dir.Attr()
		if err != nil {
			return o, errno(err)
		}
		o.GID = a.GID
	}
	return o, nil
}

// squashed reports whether clients are untrusted: their ownership is
// forced to the squash ids.
func (s *Server) squashed() bool { return s.cfg.SquashUID != nil || s.cfg.SquashGID != nil }

// squashUID and squashGID return the id an object gets when a client asks
// for id: the squash id, for untrusted clients, else id.
func (s *Server) squashUID(id uint32) uint32 {
	if s.cfg.SquashUID != nil {
		return *s.cfg.SquashUID
	}
	return id
}

func (s *Server) squashGID(id uint32) uint32 {
	if s.cfg.SquashGID != nil {
		return *s.cfg.SquashGID
	}
	return id
}
