package p9srv

import (
	"github.com/union9p/union9p/p9srv/wire"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// attrMaskBasic is what Rgetattr carries: everything Linux's stat needs
// (P9_STATS_BASIC); no btime, generation or data version.
const attrMaskBasic = wire.GetattrBasic

// getattr answers Tgetattr.
func (c *conn) getattr(r *request, m *wire.TgetattrReq) error {
	f, err := c.nodeFid(m.Fid)
	if err != nil {
		return err
	}
	defer c.putFid(f)
	a, err := f.node.Attr()
	if err != nil {
		return err
	}
	wa := wireAttr(&a)
	r.out.Attr(&wa)
	return nil
}

func wireAttr(a *union.Attr) wire.Attr {
	return wire.Attr{
		Valid:     attrMaskBasic,
		QID:       qidOf(a),
		Mode:      a.Mode,
		UID:       a.UID,
		GID:       a.GID,
		Nlink:     a.Nlink,
		Rdev:      a.Rdev,
		Size:      a.Size,
		Blksize:   a.Blksize,
		Blocks:    a.Blocks,
		AtimeSec:  uint64(a.Atime.Sec),
		AtimeNsec: uint64(a.Atime.Nsec),
		MtimeSec:  uint64(a.Mtime.Sec),
		MtimeNsec: uint64(a.Mtime.Nsec),
		CtimeSec:  uint64(a.Ctime.Sec),
		CtimeNsec: uint64(a.Ctime.Nsec),
	}
}

// statfs answers Tstatfs with the statistics of the filesystem that
// receives writes (union.StatFS).
func (c *conn) statfs(r *request, m *wire.TstatfsReq) error {
	f, err := c.fidOf(m.Fid)
	if err != nil {
		return err
	}
	c.putFid(f)
	st, err := c.exp.Union.StatFS()
	if err != nil {
		return err
	}
	r.out.StatFS(&wire.StatFS{
		Type:    uint32(st.Type),
		Bsize:   uint32(st.Bsize),
		Blocks:  st.Blocks,
		Bfree:   st.Bfree,
		Bavail:  st.Bavail,
		Files:   st.Files,
		Ffree:   st.Ffree,
		Fsid:    uint64(uint32(st.Fsid.Val[0])) | uint64(uint32(st.Fsid.Val[1]))<<32,
		Namelen: uint32(st.Namelen),
	})
	return nil
}

// readlink answers Treadlink.
func (c *conn) readlink(r *request, m *wire.TreadlinkReq) error {
	f, err := c.nodeFid(m.Fid)
	if err != nil {
		return err
	}
	defer c.putFid(f)
	s, err := f.node.Readlink()
	if err != nil {
		return err
	}
	r.out.Str(s)
	return nil
}

// clunk answers Tclunk: the fid goes whatever happens; a pending
// Txattrcreate is applied first and its error is the answer.
func (c *conn) clunk(num uint32) error {
	f := c.fids.remove(num)
	if f == nil {
		return unix.EBADF
	}
	err := c.applyXattrCreate(f)
	c.putFid(f)
	return err
}

// remove answers Tremove: unlink the fid's name, then clunk it (also when
// the unlink fails, as remove(5) says).
func (c *conn) remove(m *wire.TremoveReq) error {
	f, err := c.fidOf(m.Fid)
	if err != nil {
		return err
	}
	err = c.removeName(f)
	c.putFid(f)
	if cerr := c.clunk(m.Fid); err == nil && cerr != nil && cerr != unix.EBADF {
		err = cerr
	}
	return err
}

func (c *conn) removeName(f *fid) error {
	if f.node == nil || f.ent == nil || f.ent.parent == nil {
		return unix.EINVAL // the root, or an xattr fid
	}
	st := c.st
	st.nsMu.Lock()
	defer st.nsMu.Unlock()
	if st.names.isGone(f.ent) {
		return unix.ENOENT
	}
	parent, name := f.ent.parent, f.ent.name
	dir := st.names.anyNode(parent)
	if dir == nil {
		return unix.ENOENT
	}
	defer dir.Release()
	if err := dir.Unlink(name, f.isDir()); err != nil {
		return err
	}
	st.names.removed(parent, name)
	return nil
}
