package p9srv

import (
	"github.com/union9p/union9p/p9srv/wire"
	"golang.org/x/sys/unix"
)

// walk answers Twalk. Names are looked up one at a time in the union
// (which refuses "", ".", ".." and names with '/'); if the first fails its
// error is the answer, if a later one fails the qids walked so far are
// (and newfid is not made), as walk(5) says. No names clones the fid.
func (c *conn) walk(r *request, m *wire.TwalkReq) error {
	f, err := c.nodeFid(m.Fid)
	if err != nil {
		return err
	}
	defer c.putFid(f)
	if m.NewFid != m.Fid && c.fids.has(m.NewFid) {
		return unix.EBADF
	}
	st := c.st
	st.nsMu.RLock()
	defer st.nsMu.RUnlock()
	if len(m.Names) == 0 {
		if m.NewFid == m.Fid {
			r.out.U16(0)
			return nil
		}
		n := f.node.Retain()
		st.names.again(f.ent, n)
		nf := newFid(n, f.ent, f.uid)
		if err := c.fids.add(c, m.NewFid, nf); err != nil {
			nf.refs.Store(1)
			c.putFid(nf)
			return err
		}
		r.out.U16(0)
		return nil
	}
	if st.names.isGone(f.ent) {
		return unix.ENOENT // its directory was removed
	}

	var qids [wire.MaxWalkNames]wire.QID
	n, e := f.node, f.ent
	owned := false // whether n is a reference of ours (after the first name)
	walked := 0
	for i, name := range m.Names {
		// The qid is the node's id and type, which the lookup found: no
		// stat (a lookup as the kernel's overlayfs does it; the client
		// asks for attributes with Tgetattr when it wants them).
		next, err := n.Lookup(name)
		if err != nil {
			if owned {
				n.Release()
				st.names.prune(e) // the names between were for nobody
			}
			if i == 0 {
				return err
			}
			break
		}
		// A node between two walked names is registered too (holding
		// no fid): it is the parent node of the next, and a rename of
		// its name must reach it. names keeps its own reference.
		last := i == len(m.Names)-1
		e = st.names.enter(e, name, next, last)
		if owned {
			n.Release()
		}
		n, owned = next, true
		qids[i] = qidFor(next.ID(), next.Type())
		walked++
	}
	if walked < len(m.Names) {
		r.out.U16(uint16(walked))
		for _, q := range qids[:walked] {
			r.out.QID(q)
		}
		return nil
	}
	nf := newFid(n, e, f.uid)
	if m.NewFid == m.Fid {
		// Walking a fid onto itself: the new node replaces the old.
		if err := c.replaceFid(m.Fid, f, nf); err != nil {
			return err
		}
	} else if err := c.fids.add(c, m.NewFid, nf); err != nil {
		nf.refs.Store(1)
		c.putFid(nf)
		return err
	}
	r.out.U16(uint16(walked))
	for _, q := range qids[:walked] {
		r.out.QID(q)
	}
	return nil
}
