package p9srv

import (
	"io"

	"github.com/union9p/union9p/p9srv/wire"
	"golang.org/x/sys/unix"
)

// Opening, reading and writing files.

// lopen answers Tlopen. Only regular files and directories are opened
// (union.Node.Open): Linux handles device nodes, FIFOs and sockets on the
// client side and never opens them through 9P.
func (c *conn) lopen(r *request, m *wire.TlopenReq) error {
	f, err := c.fidOf(m.Fid)
	if err != nil {
		return err
	}
	defer c.putFid(f)
	if f.node == nil || f.open.Load() != nil || f.hasXattrState() {
		return unix.EINVAL
	}
	uf, err := f.node.Open(hostOpenFlags(m.Flags))
	if err != nil {
		return err
	}
	// Two pipelined Tlopens of one fid can both get here: one wins.
	if !f.open.CompareAndSwap(nil, uf) {
		uf.Close()
		return unix.EINVAL
	}
	// The id survives a copy-up made by this open: no need to stat again.
	r.out.QID(qidFor(f.id, f.typ)).U32(0)
	return nil
}

// lcreate answers Tlcreate: a new regular file, opened; the fid now
// stands on it.
func (c *conn) lcreate(r *request, m *wire.TlcreateReq) error {
	f, err := c.fidOf(m.Fid)
	if err != nil {
		return err
	}
	defer c.putFid(f)
	if f.node == nil || !f.isDir() || f.open.Load() != nil || f.hasXattrState() {
		return unix.EINVAL
	}
	o, err := c.owner(f, m.GID, f.node)
	if err != nil {
		return err
	}
	st := c.st
	st.nsMu.RLock()
	defer st.nsMu.RUnlock()
	n, uf, err := f.node.Create(m.Name, hostOpenFlags(m.Flags), m.Mode&0o7777, o)
	if err != nil {
		return err
	}
	e := st.names.enter(f.ent, m.Name, n, true)
	nf := newFid(n, e, f.uid)
	nf.open.Store(uf)
	if err := c.replaceFid(m.Fid, f, nf); err != nil {
		return err
	}
	r.out.QID(qidFor(n.ID(), n.Type())).U32(0) // no stat: the qid is the node's id and type
	return nil
}

// read answers Tread, reading from the host straight into the response
// frame. Counts are capped by the msize.
func (c *conn) read(r *request, m *wire.TreadReq) error {
	f, err := c.fidOf(m.Fid)
	if err != nil {
		return err
	}
	defer c.putFid(f)
	if f.isXattrRead() {
		return c.readXattr(r, f, m)
	}
	uf := f.open.Load()
	if uf == nil {
		return unix.EBADF
	}
	const rreadHeader = wire.HeaderSize + 4
	count := min(int(m.Count), int(c.msizeNow())-rreadHeader)
	if count < 0 {
		count = 0
	}
	buf := c.replaceResponse(r, rreadHeader+count)
	buf = wire.StartFrame(buf, wire.Rread, r.tag)
	buf = buf[:rreadHeader+count]
	n, err := uf.ReadAt(buf[rreadHeader:], int64(m.Offset))
	if err != nil && err != io.EOF {
		return err
	}
	buf = buf[:rreadHeader+n]
	buf[wire.HeaderSize] = byte(n)
	buf[wire.HeaderSize+1] = byte(n >> 8)
	buf[wire.HeaderSize+2] = byte(n >> 16)
	buf[wire.HeaderSize+3] = byte(n >> 24)
	r.out.Reset(buf)
	return nil
}

// msizeNow is the negotiated msize (the server's cap before Tversion).
func (c *conn) msizeNow() uint32 {
	if m := c.msize.Load(); m != 0 {
		return m
	}
	return c.srv.maxMsize
}

// writeReq answers Twrite, writing from the request frame.
func (c *conn) writeReq(r *request, m *wire.TwriteReq) error {
	f, err := c.fidOf(m.Fid)
	if err != nil {
		return err
	}
	defer c.putFid(f)
	if f.hasXattrState() {
		return c.writeXattr(r, f, m)
	}
	uf := f.open.Load()
	if uf == nil {
		return unix.EBADF
	}
	n, err := uf.WriteAt(m.Data, int64(m.Offset))
	if err != nil && n == 0 {
		return err
	}
	r.out.U32(uint32(n))
	return nil
}

// fsync answers Tfsync.
func (c *conn) fsync(m *wire.TfsyncReq) error {
	f, uf, err := c.openFid(m.Fid)
	if err != nil {
		return err
	}
	defer c.putFid(f)
	return uf.Sync()
}
