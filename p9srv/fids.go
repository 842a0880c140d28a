package p9srv

import (
	"sync"
	"sync/atomic"

	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// fid is what one client fid stands for: a union node, the name it stands
// on (for renames), the uid of the attach it descends from and, once
// opened, the open union file. An xattr fid (Txattrwalk's newfid, or a fid
// after Txattrcreate) carries an attribute value instead.
//
// Concurrency: requests on one fid may run at once (Linux reads one open
// file from several threads). node, ent, uid, typ and id never change; the
// open file is set once (open); xattr state is set before the fid is
// shared or guarded by mu. refs counts the table's hold and each request
// using the fid; the last release closes everything.
type fid struct {
	node *union.Node // nil for an xattr read fid
	ent  *nameEntry  // nil for an xattr read fid
	uid  uint32      // attach identity: owner of what is created through it
	typ  uint32      // S_IFMT
	id   uint64      // the object's stable id (keys record locks)

	open atomic.Pointer[union.File]
	refs atomic.Int32

	mu sync.Mutex
	// xattrRead is a Txattrwalk's value, read with Tread.
	xattrRead []byte
	isXattr   bool
	// xattrWrite is a Txattrcreate in progress, set on Tclunk.
	xattrWrite *xattrCreate
}

// isDir reports whether the fid stands on a directory.
func (f *fid) isDir() bool { return f.typ == unix.S_IFDIR }

// fidTable maps one connection's fid numbers to fids.
type fidTable struct {
	mu   sync.Mutex
	m    map[uint32]*fid
	max  int
	full bool // the limit was reported in the log
}

func (t *fidTable) init(max int) { t.m = make(map[uint32]*fid); t.max = max }

// get returns fid num with a reference for the caller, or nil.
func (t *fidTable) get(num uint32) *fid {
	t.mu.Lock()
	f := t.m[num]
	if f != nil {
		f.refs.Add(1)
	}
	t.mu.Unlock()
	return f
}

// errFidLimit is what a request that would pass the fid limit gets: EMFILE
// to the client, but not the host's exhaustion (see noteExhaustion).
var errFidLimit error = fidLimitError{}

type fidLimitError struct{}

func (fidLimitError) Error() string { return "connection's fid limit reached" }
func (fidLimitError) Unwrap() error { return unix.EMFILE }

// add enters f as num (the table takes f's first reference). It fails
// with EBADF if num is in use and EMFILE at the connection's fid limit.
func (t *fidTable) add(c *conn, num uint32, f *fid) error {
	t.mu.Lock()
	if _, used := t.m[num]; used {
		t.mu.Unlock()
		return unix.EBADF
	}
	if len(t.m) >= t.max {
		first := !t.full
		t.full = true
		t.mu.Unlock()
		if first {
			c.log.Warn("fid limit reached; requests for new fids fail with EMFILE until fids are clunked", "limit", t.max)
		}
		return errFidLimit
	}
	t.full = false
	f.refs.Store(1)
	t.m[num] = f
	t.mu.Unlock()
	return nil
}

// has reports whether num is in use.
func (t *fidTable) has(num uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.m[num]
	return ok
}

// remove takes num out of the table and returns it, still holding the
// table's reference, or nil.
func (t *fidTable) remove(num uint32) *fid {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[num]
	delete(t.m, num)
	return f
}

// replaceFid puts nf in place of old as fid num (a Twalk of a fid onto
// itself) and drops the table's reference to old.
func (c *conn) replaceFid(num uint32, old, nf *fid) error {
	t := &c.fids
	t.mu.Lock()
	if t.m[num] != old {
		t.mu.Unlock()
		nf.refs.Store(1)
		c.putFid(nf)
		return unix.EBADF // clunked meanwhile
	}
	nf.refs.Store(1)
	t.m[num] = nf
	t.mu.Unlock()
	c.putFid(old)
	return nil
}

// clunkAll drops every fid (end of connection, Tversion).
func (t *fidTable) clunkAll(c *conn) {
	t.mu.Lock()
	all := t.m
	t.m = make(map[uint32]*fid)
	t.mu.Unlock()
	for _, f := range all {
		c.putFid(f)
	}
}

// newFid returns a fid for node n standing on entry e (taking over the
// caller's reference to n; e's registration is the caller's too).
func newFid(n *union.Node, e *nameEntry, uid uint32) *fid {
	return &fid{node: n, ent: e, uid: uid, typ: n.Type(), id: n.ID()}
}

// putFid drops one reference to f; the last closes its open file (with
// the record locks taken through it), leaves its name and releases its
// node.
func (c *conn) putFid(f *fid) {
	if f.refs.Add(-1) != 0 {
		return
	}
	if uf := f.open.Swap(nil); uf != nil {
		c.st.locks.dropFid(f.id, f)
		uf.Close()
	}
	if f.node != nil {
		if f.ent != nil {
			c.st.names.leave(f.ent, f.node)
		}
		f.node.Release()
	}
}
