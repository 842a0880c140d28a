package p9srv

import (
	"errors"

	"github.com/union9p/union9p/p9srv/wire"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// run handles one decoded request: it appends the response body to r.out
// or returns the error to answer with. Each handler gets the request
// whole; what a handler needs of the connection (its export and identity
// settings, fids, locks) is reached through c.
func (c *conn) run(r *request) error {
	var err error
	switch m := r.msg.(type) {
	case *wire.TattachReq:
		err = c.attach(r, m)
	case *wire.TauthReq:
		err = unix.ENOSYS // no authentication: see the README's "Trust"
	case *wire.TwalkReq:
		err = c.walk(r, m)
	case *wire.TgetattrReq:
		err = c.getattr(r, m)
	case *wire.TstatfsReq:
		err = c.statfs(r, m)
	case *wire.TclunkReq:
		err = c.clunk(m.Fid)
	case *wire.TremoveReq:
		err = c.remove(m)
	case *wire.TreadlinkReq:
		err = c.readlink(r, m)
	case *wire.TlopenReq:
		err = c.lopen(r, m)
	case *wire.TlcreateReq:
		err = c.lcreate(r, m)
	case *wire.TreadReq:
		err = c.read(r, m)
	case *wire.TwriteReq:
		err = c.writeReq(r, m)
	case *wire.TfsyncReq:
		err = c.fsync(m)
	case *wire.TreaddirReq:
		err = c.readdir(r, m)
	case *wire.TmkdirReq:
		err = c.mkdir(r, m)
	case *wire.TsymlinkReq:
		err = c.symlink(r, m)
	case *wire.TmknodReq:
		err = c.mknod(r, m)
	case *wire.TlinkReq:
		err = c.link(m)
	case *wire.TrenameatReq:
		err = c.renameat(m)
	case *wire.TrenameReq:
		err = c.rename(m)
	case *wire.TunlinkatReq:
		err = c.unlinkat(m)
	case *wire.TsetattrReq:
		err = c.setattr(m)
	case *wire.TxattrwalkReq:
		err = c.xattrwalk(r, m)
	case *wire.TxattrcreateReq:
		err = c.xattrcreate(m)
	case *wire.TlockReq:
		err = c.lock(r, m)
	case *wire.TgetlockReq:
		err = c.getlock(r, m)
	default:
		err = unix.ENOSYS
	}
	if err != nil && !errors.Is(err, errFidLimit) {
		if e := errnoOf(err); isResourceErrno(e) {
			c.srv.noteExhaustion(c, r.typ, e)
		}
	}
	return err
}

// fidOf returns fid num with a reference, or EBADF.
func (c *conn) fidOf(num uint32) (*fid, error) {
	f := c.fids.get(num)
	if f == nil {
		return nil, unix.EBADF
	}
	return f, nil
}

// openFid is fidOf for a fid opened by Tlopen or Tlcreate, returned with
// its open file; EBADF for any other. The caller puts the fid back.
func (c *conn) openFid(num uint32) (*fid, *union.File, error) {
	f, err := c.fidOf(num)
	if err != nil {
		return nil, nil, err
	}
	uf := f.open.Load()
	if uf == nil {
		c.putFid(f)
		return nil, nil, unix.EBADF
	}
	return f, uf, nil
}

// nodeFid is fidOf for a fid that stands for a node: EINVAL for an xattr
// fid (which has none). The caller puts the fid back.
func (c *conn) nodeFid(num uint32) (*fid, error) {
	f, err := c.fidOf(num)
	if err != nil {
		return nil, err
	}
	if f.node == nil {
		c.putFid(f)
		return nil, unix.EINVAL
	}
	return f, nil
}
