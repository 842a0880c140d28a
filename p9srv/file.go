package p9srv

import (
	"sync/atomic"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// file is the p9.File of one fid: a union node, the uid of the attach it
// descends from, and, once opened, the open union file.
//
// Concurrency: the library serializes the operations that change the tree
// (see p9.File); file itself only guards what the library may call in
// parallel on one fid (the open file, the reference count). Its methods
// never block on other clients: lock conflicts are answered, not waited on.
type file struct {
	srv  *Server
	node *union.Node
	uid  uint32 // owner of objects created through this fid
	typ  uint32 // S_IFMT bits; an object's type never changes
	id   uint64 // the object's stable id, which keys its record locks

	open atomic.Pointer[union.File]

	// refs counts the Close calls still to come. The library's Txattrwalk
	// makes a second fid that shares this File and closes it when that fid
	// is clunked, so each successful GetXattr/ListXattrs adds one.
	refs atomic.Int32
}

var _ p9.File = (*file)(nil)

// newFile makes the File of node n (taking over its reference).
func newFile(s *Server, n *union.Node, uid uint32) (*file, error) {
	a, err := n.Attr()
	if err != nil {
		return nil, errno(err)
	}
	return newFileAttr(s, n, uid, &a), nil
}

func newFileAttr(s *Server, n *union.Node, uid uint32, a *union.Attr) *file {
	f := &file{srv: s, node: n, uid: uid, typ: a.Mode & unix.S_IFMT, id: a.ID}
	f.refs.Store(1)
	return f
}

// qidOf returns the QID of an object: its stable id and its type.
func qidOf(a *union.Attr) p9.QID { return qidFor(a.ID, a.Mode&unix.S_IFMT) }

// qidFor returns the QID of the object with stable id and S_IFMT type typ.
func qidFor(id uint64, typ uint32) p9.QID {
	q := p9.QID{Path: id}
	switch typ {
	case unix.S_IFDIR:
		q.Type = p9.TypeDir
	case unix.S_IFLNK:
		q.Type = p9.TypeSymlink
	}
	return q
}

// attrMaskBasic is what Rgetattr carries: everything Linux's stat needs
// (P9_STATS_BASIC); no btime, generation or data version.
var attrMaskBasic = p9.AttrMask{
	Mode: true, NLink: true, UID: true, GID: true, RDev: true, ATime: true,
	MTime: true, CTime: true, INo: true, Size: true, Blocks: true,
}

func p9Attr(a *union.Attr) p9.Attr {
	return p9.Attr{
		Mode:             p9.FileMode(a.Mode),
		UID:              p9.UID(a.UID),
		GID:              p9.GID(a.GID),
		NLink:            p9.NLink(a.Nlink),
		RDev:             p9.Dev(a.Rdev),
		Size:             a.Size,
		BlockSize:        a.Blksize,
		Blocks:           a.Blocks,
		ATimeSeconds:     uint64(a.Atime.Sec),
		ATimeNanoSeconds: uint64(a.Atime.Nsec),
		MTimeSeconds:     uint64(a.Mtime.Sec),
		MTimeNanoSeconds: uint64(a.Mtime.Nsec),
		CTimeSeconds:     uint64(a.Ctime.Sec),
		CTimeNanoSeconds: uint64(a.Ctime.Nsec),
	}
}

// Walk implements p9.File.Walk. The library walks one name at a time (and
// has refused "", ".", ".." and names with '/'); no names clones the fid.
func (f *file) Walk(names []string) ([]p9.QID, p9.File, error) {
	qids, nf, _, err := f.walk(names)
	if err != nil {
		return nil, nil, err
	}
	return qids, nf, nil
}

// WalkGetAttr implements p9.File.WalkGetAttr: the library walks with it to
// learn each new fid's type, which saves a second stat.
func (f *file) WalkGetAttr(names []string) ([]p9.QID, p9.File, p9.AttrMask, p9.Attr, error) {
	qids, nf, a, err := f.walk(names)
	if err != nil {
		return nil, nil, p9.AttrMask{}, p9.Attr{}, err
	}
	return qids, nf, attrMaskBasic, p9Attr(&a), nil
}

func (f *file) walk(names []string) ([]p9.QID, *file, union.Attr, error) {
	n := f.node.Retain()
	qids := make([]p9.QID, 0, len(names))
	var a union.Attr
	var err error
	for _, name := range names {
		next, err := n.Lookup(name)
		n.Release()
		if err != nil {
			return nil, nil, union.Attr{}, errno(err)
		}
		n = next
		if a, err = n.Attr(); err != nil {
			n.Release()
			return nil, nil, union.Attr{}, errno(err)
		}
		qids = append(qids, qidOf(&a))
	}
	if len(names) == 0 {
		// A clone: the new fid's attributes are the old one's.
		if a, err = n.Attr(); err != nil {
			n.Release()
			return nil, nil, union.Attr{}, errno(err)
		}
	}
	return qids, newFileAttr(f.srv, n, f.uid, &a), a, nil
}

// GetAttr implements p9.File.GetAttr.
func (f *file) GetAttr(p9.AttrMask) (p9.QID, p9.AttrMask, p9.Attr, error) {
	a, err := f.node.Attr()
	if err != nil {
		return p9.QID{}, p9.AttrMask{}, p9.Attr{}, errno(err)
	}
	return qidOf(&a), attrMaskBasic, p9Attr(&a), nil
}

// StatFS implements p9.File.StatFS with the statistics of the filesystem
// that receives writes (union.StatFS).
func (f *file) StatFS() (p9.FSStat, error) {
	st, err := f.srv.cfg.Union.StatFS()
	if err != nil {
		return p9.FSStat{}, errno(err)
	}
	return p9.FSStat{
		Type:            uint32(st.Type),
		BlockSize:       uint32(st.Bsize),
		Blocks:          st.Blocks,
		BlocksFree:      st.Bfree,
		BlocksAvailable: st.Bavail,
		Files:           st.Files,
		FilesFree:       st.Ffree,
		FSID:            uint64(uint32(st.Fsid.Val[0])) | uint64(uint32(st.Fsid.Val[1]))<<32,
		NameLength:      uint32(st.Namelen),
	}, nil
}

// Open implements p9.File.Open. Only regular files and directories are
// opened (union.Node.Open): Linux handles device nodes, FIFOs and sockets
// on the client side and never opens them through 9P.
func (f *file) Open(flags p9.OpenFlags) (p9.QID, uint32, error) {
	uf, err := f.node.Open(hostOpenFlags(flags))
	if err != nil {
		return p9.QID{}, 0, errno(err)
	}
	// The library checks that a fid is not open yet under a shared lock, so
	// two pipelined Tlopens of one fid can both get here: one wins.
	if !f.open.CompareAndSwap(nil, uf) {
		uf.Close()
		return p9.QID{}, 0, linux.EINVAL
	}
	// The id survives a copy-up made by this open: no need to stat again.
	return qidFor(f.id, f.typ), 0, nil
}

// ReadAt implements p9.File.ReadAt.
func (f *file) ReadAt(p []byte, offset int64) (int, error) {
	uf := f.open.Load()
	if uf == nil {
		return 0, linux.EBADF
	}
	n, err := uf.ReadAt(p, offset)
	return n, errno(err)
}

// WriteAt implements p9.File.WriteAt.
func (f *file) WriteAt(p []byte, offset int64) (int, error) {
	uf := f.open.Load()
	if uf == nil {
		return 0, linux.EBADF
	}
	n, err := uf.WriteAt(p, offset)
	return n, errno(err)
}

// FSync implements p9.File.FSync.
func (f *file) FSync() error {
	uf := f.open.Load()
	if uf == nil {
		return linux.EBADF
	}
	return errno(uf.Sync())
}

// Readlink implements p9.File.Readlink.
func (f *file) Readlink() (string, error) {
	s, err := f.node.Readlink()
	return s, errno(err)
}

// Close implements p9.File.Close: the last of the expected calls (see refs)
// closes the open file and releases the node. Closing the open file drops
// the record locks taken through it.
func (f *file) Close() error {
	if f.refs.Add(-1) != 0 {
		return nil
	}
	if uf := f.open.Swap(nil); uf != nil {
		f.srv.locks.dropFid(f.id, f)
		uf.Close()
	}
	f.node.Release()
	return nil
}

// Renamed implements p9.File.Renamed.
func (f *file) Renamed(newDir p9.File, newName string) {
	if d, ok := newDir.(*file); ok {
		f.node.Moved(d.node, newName)
	}
}

// Rename implements p9.File.Rename; the server only calls RenameAt.
func (f *file) Rename(p9.File, string) error { return linux.ENOSYS }
