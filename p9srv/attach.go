package p9srv

import (
	"os/user"
	"strconv"
	"strings"

	"github.com/union9p/union9p/p9srv/wire"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// version answers Tversion: it waits for the requests in hand, drops every
// fid of the connection (a new session begins), and grants the client's
// msize up to Config.MaxMsize with plain "9P2000.L" (Linux's dialect; the
// p9 library's "9P2000.L.Google.N" client accepts it too). Anything else
// is answered "unknown", as the protocol says. Runs in the reader.
func (c *conn) version(r *request) {
	m := r.msg.(*wire.TversionReq)
	c.waitIdle()
	c.hands.Wait()
	c.fids.clunkAll(c)
	msize := min(m.Msize, c.srv.maxMsize)
	version := wire.Version
	if !strings.HasPrefix(m.Version, wire.Version) || msize < minClientMsize {
		version = "unknown"
	} else {
		c.msize.Store(msize)
		if f, ok := c.rw.(*fdConn); ok {
			f.sizeSendBuffer(int(msize))
		}
	}
	if c.srv.cfg.Trace {
		c.log.Info("9p recv", "type", "Tversion", "tag", r.tag, "msize", m.Msize, "version", m.Version)
	}
	c.startResponse(r)
	r.out.U32(msize).Str(version)
	frame := wire.FinishFrame(r.out.Bytes())
	if c.srv.cfg.Trace {
		c.log.Info("9p send", "type", "Rversion", "tag", r.tag, "msize", msize, "version", version)
	}
	c.writeMu.Lock()
	c.write(frame)
	c.writeMu.Unlock()
	c.release(r)
}

// minClientMsize is the smallest msize granted: a Rgetattr and a directory
// entry with a long name must fit.
const minClientMsize = 512

// attach makes fid the union's root for the uid the Tattach speaks for.
// The aname is ignored: a connection serves one union (its Export).
func (c *conn) attach(r *request, m *wire.TattachReq) error {
	if m.Afid != wire.NoFid {
		return unix.EINVAL // no authentication
	}
	if c.fids.has(m.Fid) {
		return unix.EBADF
	}
	root, err := c.exp.Union.Root()
	if err != nil {
		return err
	}
	a, err := root.Attr()
	if err != nil {
		root.Release()
		return err
	}
	st := c.st
	st.nsMu.RLock()
	e := st.names.enterRoot(root)
	st.nsMu.RUnlock()
	f := newFid(root, e, resolveAttachUID(m.Uname, m.NUname))
	if err := c.fids.add(c, m.Fid, f); err != nil {
		f.refs.Store(1)
		c.putFid(f)
		return err
	}
	r.out.QID(qidOf(&a))
	return nil
}

// anonymousUID is whom an attach speaks for when it names no user this
// host knows: nobody, as the Linux client's own default user name
// (V9FS_DEFUSER, sent with access=any) says. Minimal guests and containers
// often have no "nobody" in their passwd file.
const anonymousUID = 65534

// resolveAttachUID returns the uid a Tattach speaks for: n_uname, as Linux
// sends it, else a numeric uname or a user name known to this host, else
// nobody.
func resolveAttachUID(uname string, nuname uint32) uint32 {
	if nuname != wire.NoUID {
		return nuname
	}
	if n, err := strconv.ParseUint(uname, 10, 32); err == nil && n != uint64(wire.NoUID) {
		return uint32(n)
	}
	if u, err := user.Lookup(uname); err == nil {
		if n, err := strconv.ParseUint(u.Uid, 10, 32); err == nil {
			return uint32(n)
		}
	}
	return anonymousUID
}

// owner returns who owns an object created through fid f by a request
// that carried gid, in directory dir. Squashing overrides both. A client
// that sends no gid gets the group of the directory, as BSD semantics.
func (c *conn) owner(f *fid, gid uint32, dir *union.Node) (union.Owner, error) {
	o := c.exp.squash().Owner(union.Owner{UID: f.uid, GID: gid})
	if gid == wire.NoUID && c.exp.SquashGID == nil {
		a, err := dir.Attr()
		if err != nil {
			return o, err
		}
		o.GID = a.GID
	}
	return o, nil
}

// qidOf returns the QID of an object: its stable id and its type.
func qidOf(a *union.Attr) wire.QID { return qidFor(a.ID, a.Mode&unix.S_IFMT) }

// qidFor returns the QID of the object with stable id and S_IFMT type typ.
func qidFor(id uint64, typ uint32) wire.QID {
	q := wire.QID{Path: id}
	switch typ {
	case unix.S_IFDIR:
		q.Type = wire.QIDTypeDir
	case unix.S_IFLNK:
		q.Type = wire.QIDTypeSymlink
	}
	return q
}
