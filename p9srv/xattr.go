package p9srv

import (
	"strings"

	"github.com/union9p/union9p/p9srv/wire"
	"golang.org/x/sys/unix"
)

// Extended attributes, including POSIX ACLs (system.posix_acl_access and
// system.posix_acl_default travel as their binary xattr values). Package
// union hides and refuses the overlay's private attributes.
//
// Reading, as Linux does it: Txattrwalk(fid, newfid, name) makes newfid
// hold the value (or, for name "", the NUL-separated list of names) and
// answers its size; Treads of newfid return it; Tclunk drops it.
// Writing: Txattrcreate(fid, name, size, flags) turns fid into a buffer of
// size bytes, Twrites fill it, and Tclunk sets the attribute (size 0 with
// XATTR_REPLACE removes it) and answers with the result.

// xattrSizeMax is Linux's XATTR_SIZE_MAX and XATTR_LIST_MAX: no value or
// list is larger, so no client makes the server buffer more.
const xattrSizeMax = 64 << 10

// xattrCreate is a Txattrcreate waiting for its value.
type xattrCreate struct {
	name  string
	size  int
	flags int
	buf   []byte
}

func (f *fid) hasXattrState() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.isXattr || f.xattrWrite != nil
}

func (f *fid) isXattrRead() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.isXattr
}

// xattrwalk answers Txattrwalk.
func (c *conn) xattrwalk(r *request, m *wire.TxattrwalkReq) error {
	f, err := c.nodeFid(m.Fid)
	if err != nil {
		return err
	}
	defer c.putFid(f)
	var v []byte
	if m.Name == "" {
		names, err := f.node.ListXattr()
		if err != nil {
			return err
		}
		if len(names) > 0 {
			v = []byte(strings.Join(names, "\x00") + "\x00")
		}
	} else if v, err = f.node.GetXattr(m.Name); err != nil {
		return err
	}
	if len(v) > xattrSizeMax {
		return unix.E2BIG
	}
	nf := &fid{uid: f.uid, typ: f.typ, id: f.id, isXattr: true, xattrRead: v}
	if err := c.fids.add(c, m.NewFid, nf); err != nil {
		return err
	}
	r.out.U64(uint64(len(v)))
	return nil
}

// readXattr answers a Tread of an xattr fid.
func (c *conn) readXattr(r *request, f *fid, m *wire.TreadReq) error {
	f.mu.Lock()
	v := f.xattrRead
	f.mu.Unlock()
	var p []byte
	if m.Offset < uint64(len(v)) {
		p = v[m.Offset:]
	}
	if max := int(c.msizeNow()) - wire.HeaderSize - 4; len(p) > int(m.Count) || len(p) > max {
		p = p[:min(int(m.Count), max)]
	}
	buf := c.replaceResponse(r, wire.HeaderSize+4+len(p))
	r.out.Reset(wire.StartFrame(buf, wire.Rread, r.tag))
	r.out.U32(uint32(len(p))).Raw(p)
	return nil
}

// xattrcreate answers Txattrcreate. Values are capped at Linux's 64 KiB.
func (c *conn) xattrcreate(m *wire.TxattrcreateReq) error {
	f, err := c.fidOf(m.Fid)
	if err != nil {
		return err
	}
	defer c.putFid(f)
	if f.node == nil || f.open.Load() != nil {
		return unix.EINVAL
	}
	if m.Size > xattrSizeMax {
		return unix.E2BIG
	}
	if m.Name == "" {
		return unix.EINVAL
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.isXattr || f.xattrWrite != nil {
		return unix.EINVAL
	}
	f.xattrWrite = &xattrCreate{name: m.Name, size: int(m.Size), flags: int(m.Flags), buf: make([]byte, 0, m.Size)}
	return nil
}

// writeXattr answers a Twrite to a fid after Txattrcreate.
func (c *conn) writeXattr(r *request, f *fid, m *wire.TwriteReq) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	x := f.xattrWrite
	if x == nil || m.Offset != uint64(len(x.buf)) || len(x.buf)+len(m.Data) > x.size {
		return unix.EINVAL
	}
	x.buf = append(x.buf, m.Data...)
	r.out.U32(uint32(len(m.Data)))
	return nil
}

// applyXattrCreate sets the attribute a Txattrcreate on f announced, when
// f is clunked. A value shorter than announced is EINVAL.
func (c *conn) applyXattrCreate(f *fid) error {
	f.mu.Lock()
	x := f.xattrWrite
	f.xattrWrite = nil
	f.mu.Unlock()
	if x == nil {
		return nil
	}
	if len(x.buf) != x.size {
		return unix.EINVAL
	}
	if x.size == 0 && x.flags == unix.XATTR_REPLACE {
		return f.node.RemoveXattr(x.name)
	}
	return f.node.SetXattr(x.name, x.buf, x.flags)
}
