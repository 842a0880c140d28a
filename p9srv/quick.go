package p9srv

import (
	"github.com/union9p/union9p/p9srv/wire"
	"golang.org/x/sys/unix"
)

// quick reports whether r is a request the reader may handle itself
// without the watchdog watching: one that does a bounded amount of host
// work and never waits on anything but the host's file systems (no
// copy-up, no lock wait, no fsync, no FIFO or device that may block).
// Only the connection's reader calls it (it looks at c.br).
//
// Why: the watchdog (watchdog.go) must tick while a reader handles a
// request, and each tick wakes a thread and keeps the Go scheduler's
// monitor busy; for the requests a client sends most (walk, getattr,
// clunk, statfs, readdir, reads and writes of files) that costs more
// than the request: a 1 MiB write took ten ticks, and a create+write+
// clunk cycle three. Changes to objects already in the upper (create,
// mkdir, symlink, mknod in an upper directory; setattr without a size)
// are as bounded as a write. Everything else still goes through the
// watchdog (a copy-up, a lock, an fsync, an unlink or rename), so a slow
// request never holds up the connection for long.
func (c *conn) quick(r *request) bool {
	switch m := r.msg.(type) {
	case *wire.TwalkReq, *wire.TgetattrReq, *wire.TstatfsReq, *wire.TclunkReq,
		*wire.TreadlinkReq, *wire.TxattrwalkReq, *wire.TreaddirReq:
		// Tclunk may end a Txattrcreate (a setxattr, which may copy up):
		// see below.
		if m, ok := m.(*wire.TclunkReq); ok {
			return c.fidIsPlain(m.Fid, false)
		}
		return true
	case *wire.TattachReq:
		// The root's attributes, with the uid sent as a number (Linux
		// always sends it); a name is looked up in the user database,
		// which may ask a directory service.
		return m.NUname != wire.NoUID
	case *wire.TlopenReq:
		// Reading opens no copy-up; a FIFO's open may wait for a writer.
		return m.Flags&(wire.OAccMode|dotlTrunc) == wire.ORdonly && c.fidIsPlain(m.Fid, true)
	case *wire.TreadReq:
		// A FIFO's or a device's read may wait.
		return c.fidIsPlain(m.Fid, true)
	case *wire.TlcreateReq:
		// A new file (O_EXCL: never an existing FIFO) in a directory
		// that is in the upper already: no copy-up of the directory
		// chain, a few host calls.
		return c.fidInUpper(m.Fid)
	case *wire.TmkdirReq:
		return c.fidInUpper(m.Dfid)
	case *wire.TsymlinkReq:
		return c.fidInUpper(m.Fid)
	case *wire.TmknodReq:
		return c.fidInUpper(m.Dfid) // makes the node, never opens it
	case *wire.TsetattrReq:
		// Mode, owner and times of an object in the upper; a size
		// change may have to copy a metadata-only copy's data in.
		return m.Valid&wire.SetattrSize == 0 && c.fidInUpper(m.Fid)
	case *wire.TwriteReq:
		// A write to an open regular file: the open made any copy-up, so
		// this is one pwrite(2) (which the host's page cache may throttle,
		// as it may delay a read); a FIFO's may wait for a reader. A
		// write to an xattr fid is buffered in memory unless a setxattr
		// is pending on the fid. Only while nothing else is buffered: a
		// client writing back many pages pipelines its writes, and those
		// go to handlers (conn.dispatch), so that a request queued behind
		// them (a getattr from another process) is not held up by them
		// all in turn.
		return c.br.Buffered() == 0 && c.fidIsPlain(m.Fid, true)
	}
	return false
}

// fidInUpper reports whether fid num stands on a node that is in the
// upper layer already (or does not exist: answered at once with EBADF).
func (c *conn) fidInUpper(num uint32) bool {
	f := c.fids.get(num)
	if f == nil {
		return true
	}
	defer c.putFid(f)
	return f.node != nil && f.node.HasUpper()
}

// fidIsPlain reports whether fid num exists, has no xattr write pending
// and (with fileOrDir) stands on a regular file or a directory.
func (c *conn) fidIsPlain(num uint32, fileOrDir bool) bool {
	f := c.fids.get(num)
	if f == nil {
		return true // answered at once with EBADF
	}
	defer c.putFid(f)
	f.mu.Lock()
	pending := f.xattrWrite != nil
	f.mu.Unlock()
	if pending {
		return false
	}
	return !fileOrDir || f.typ == unix.S_IFREG || f.typ == unix.S_IFDIR || f.node == nil
}
