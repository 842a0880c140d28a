package p9srv

import (
	"github.com/union9p/union9p/p9srv/wire"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// Directory operations. Names are checked by the union ("", ".", "..",
// '/' are EINVAL, over 255 bytes ENAMETOOLONG). Objects are owned by the
// uid of the attach the directory fid descends from and the gid the
// client sent (see conn.owner).

// dirFid returns fid num if it stands on a directory and is not open.
func (c *conn) dirFid(num uint32) (*fid, error) {
	f, err := c.nodeFid(num)
	if err != nil {
		return nil, err
	}
	if f.hasXattrState() {
		c.putFid(f)
		return nil, unix.EINVAL
	}
	if !f.isDir() {
		c.putFid(f)
		return nil, unix.ENOTDIR
	}
	return f, nil
}

// mkdir answers Tmkdir; the mode keeps setuid, setgid and sticky bits.
func (c *conn) mkdir(r *request, m *wire.TmkdirReq) error {
	return c.makeNode(r, m.Dfid, m.GID, func(d *union.Node, o union.Owner) (*union.Node, error) {
		return d.Mkdir(m.Name, m.Mode&0o7777, o)
	})
}

// symlink answers Tsymlink: name -> target. The target is data for the
// client; the server never follows it.
func (c *conn) symlink(r *request, m *wire.TsymlinkReq) error {
	return c.makeNode(r, m.Fid, m.GID, func(d *union.Node, o union.Owner) (*union.Node, error) {
		return d.Symlink(m.Name, m.Target, o)
	})
}

// mknod answers Tmknod; mode carries the type.
//
// A squashed (untrusted) client may not make device nodes: the server
// never opens them, but anything on the host that reaches the upper (a
// process, an overlayfs mount of it without nodev) would get the host
// device the client chose.
func (c *conn) mknod(r *request, m *wire.TmknodReq) error {
	if err := c.exp.squash().Mknod(m.Mode); err != nil {
		return err
	}
	return c.makeNode(r, m.Dfid, m.GID, func(d *union.Node, o union.Owner) (*union.Node, error) {
		return d.Mknod(m.Name, m.Mode, unix.Mkdev(m.Major, m.Minor), o)
	})
}

// makeNode makes an object in directory fid dfid with make and answers
// its QID.
func (c *conn) makeNode(r *request, dfid, gid uint32, make func(*union.Node, union.Owner) (*union.Node, error)) error {
	d, err := c.dirFid(dfid)
	if err != nil {
		return err
	}
	defer c.putFid(d)
	o, err := c.owner(d, gid, d.node)
	if err != nil {
		return err
	}
	n, err := make(d.node, o)
	if err != nil {
		return err
	}
	defer n.Release()
	r.out.QID(qidFor(n.ID(), n.Type())) // no stat: the qid is the node's id and type
	return nil
}

// link answers Tlink: name in dfid for the object of fid.
func (c *conn) link(m *wire.TlinkReq) error {
	d, err := c.dirFid(m.Dfid)
	if err != nil {
		return err
	}
	defer c.putFid(d)
	t, err := c.fidOf(m.Fid)
	if err != nil {
		return err
	}
	defer c.putFid(t)
	if t.node == nil {
		return unix.EINVAL
	}
	n, err := d.node.Link(t.node, m.Name)
	if err != nil {
		return err
	}
	n.Release()
	return nil
}

// renameat answers Trenameat. Fids standing on the renamed name, on any
// connection of the union, follow it (names.renamed).
func (c *conn) renameat(m *wire.TrenameatReq) error {
	od, err := c.dirFid(m.OldDir)
	if err != nil {
		return err
	}
	defer c.putFid(od)
	nd, err := c.dirFid(m.NewDir)
	if err != nil {
		return err
	}
	defer c.putFid(nd)
	return c.renameNodes(od.node, od.ent, m.OldName, nd, m.NewName)
}

func (c *conn) renameNodes(oldDir *union.Node, oldEnt *nameEntry, oldName string, nd *fid, newName string) error {
	st := c.st
	st.nsMu.Lock()
	defer st.nsMu.Unlock()
	if err := oldDir.Rename(oldName, nd.node, newName); err != nil {
		return err
	}
	st.names.renamed(oldEnt, oldName, nd.ent, newName)
	return nil
}

// rename answers Trename: the object of fid moves to name in dfid.
func (c *conn) rename(m *wire.TrenameReq) error {
	f, err := c.fidOf(m.Fid)
	if err != nil {
		return err
	}
	defer c.putFid(f)
	nd, err := c.dirFid(m.Dfid)
	if err != nil {
		return err
	}
	defer c.putFid(nd)
	if f.node == nil || f.ent == nil || f.ent.parent == nil {
		return unix.EINVAL
	}
	c.st.nsMu.RLock()
	parent, name := f.ent.parent, f.ent.name
	c.st.nsMu.RUnlock()
	dir := c.st.names.anyNode(parent)
	if dir == nil {
		return unix.ENOENT
	}
	defer dir.Release()
	return c.renameNodes(dir, parent, name, nd, m.Name)
}

// unlinkat answers Tunlinkat; flags is 0 or AT_REMOVEDIR.
func (c *conn) unlinkat(m *wire.TunlinkatReq) error {
	d, err := c.dirFid(m.Dfid)
	if err != nil {
		return err
	}
	defer c.putFid(d)
	if err := d.node.Unlink(m.Name, m.Flags&unix.AT_REMOVEDIR != 0); err != nil {
		return err
	}
	c.st.names.removed(d.ent, m.Name)
	return nil
}

// readdir answers Treaddir. offset is 0 or the Offset of the last entry
// the client got; count is a size in bytes, and only entries that fit are
// returned. Type carries the entry's DT_* value, which Linux uses as
// d_type.
func (c *conn) readdir(r *request, m *wire.TreaddirReq) error {
	f, uf, err := c.openFid(m.Fid)
	if err != nil {
		return err
	}
	defer c.putFid(f)
	const rreaddirHeader = wire.HeaderSize + 4
	count := min(int(m.Count), int(c.msizeNow())-rreaddirHeader)
	most := max(count/(wire.DirentFixedSize+1), 1)
	ents, err := uf.ReadDir(m.Offset, most)
	if err != nil {
		return err
	}
	buf := c.replaceResponse(r, rreaddirHeader+max(count, 0))
	r.out.Reset(wire.StartFrame(buf, wire.Rreaddir, r.tag))
	r.out.U32(0) // count, filled in below
	used := 0
	for i := range ents {
		e := &ents[i]
		size := wire.DirentFixedSize + len(e.Name)
		if used+size > count {
			if used == 0 {
				return unix.EINVAL // not even one entry fits, as getdents(2)
			}
			break
		}
		used += size
		q := wire.QID{Path: e.ID}
		switch e.Type {
		case unix.DT_DIR:
			q.Type = wire.QIDTypeDir
		case unix.DT_LNK:
			q.Type = wire.QIDTypeSymlink
		}
		r.out.Dirent(&wire.Dirent{QID: q, Offset: e.Cookie, Type: e.Type, Name: e.Name})
	}
	out := r.out.Bytes()
	out[wire.HeaderSize] = byte(used)
	out[wire.HeaderSize+1] = byte(used >> 8)
	out[wire.HeaderSize+2] = byte(used >> 16)
	out[wire.HeaderSize+3] = byte(used >> 24)
	return nil
}
