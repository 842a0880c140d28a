package p9srv

import (
	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// Directory operations. The library has checked the names (no "", ".",
// "..", '/') and that f is a directory fid not opened; it holds the
// directory's path lock for writing (RenameAt: the global lock).
//
// Objects are owned by the uid of the attach this fid descends from and
// the gid the client sent (see Server.owner). The library passes NoUID as
// uid; it is ignored.

// Create implements p9.File.Create: a new regular file, opened.
func (f *file) Create(name string, flags p9.OpenFlags, perm p9.FileMode, _ p9.UID, gid p9.GID) (p9.File, p9.QID, uint32, error) {
	o, err := f.srv.owner(f.uid, gid, f.node)
	if err != nil {
		return nil, p9.QID{}, 0, err
	}
	n, uf, err := f.node.Create(name, hostOpenFlags(flags), f.srv.fullMode(msgTlcreate, perm), o)
	if err != nil {
		return nil, p9.QID{}, 0, errno(err)
	}
	a, err := n.Attr()
	if err != nil {
		uf.Close()
		n.Release()
		return nil, p9.QID{}, 0, errno(err)
	}
	nf := newFileAttr(f.srv, n, f.uid, &a)
	nf.open.Store(uf)
	return nf, qidOf(&a), 0, nil
}

// Mkdir implements p9.File.Mkdir.
func (f *file) Mkdir(name string, perm p9.FileMode, _ p9.UID, gid p9.GID) (p9.QID, error) {
	o, err := f.srv.owner(f.uid, gid, f.node)
	if err != nil {
		return p9.QID{}, err
	}
	n, err := f.node.Mkdir(name, f.srv.fullMode(msgTmkdir, perm), o)
	if err != nil {
		return p9.QID{}, errno(err)
	}
	defer n.Release()
	return f.qidOfNode(n)
}

// Symlink implements p9.File.Symlink: newName -> target. The target is
// data for the client; the server never follows it.
func (f *file) Symlink(target, newName string, _ p9.UID, gid p9.GID) (p9.QID, error) {
	o, err := f.srv.owner(f.uid, gid, f.node)
	if err != nil {
		return p9.QID{}, err
	}
	n, err := f.node.Symlink(newName, target, o)
	if err != nil {
		return p9.QID{}, errno(err)
	}
	defer n.Release()
	return f.qidOfNode(n)
}

// Mknod implements p9.File.Mknod; mode carries the type (the library does
// not mask Tmknod's mode).
//
// A squashed (untrusted) client may not make device nodes: the server never
// opens them, but anything on the host that reaches the upper (a process,
// an overlayfs mount of it without nodev) would get the host device the
// client chose.
func (f *file) Mknod(name string, mode p9.FileMode, major, minor uint32, _ p9.UID, gid p9.GID) (p9.QID, error) {
	if typ := uint32(mode) & unix.S_IFMT; (typ == unix.S_IFCHR || typ == unix.S_IFBLK) && f.srv.squashed() {
		return p9.QID{}, linux.EPERM
	}
	o, err := f.srv.owner(f.uid, gid, f.node)
	if err != nil {
		return p9.QID{}, err
	}
	n, err := f.node.Mknod(name, uint32(mode), unix.Mkdev(major, minor), o)
	if err != nil {
		return p9.QID{}, errno(err)
	}
	defer n.Release()
	return f.qidOfNode(n)
}

func (f *file) qidOfNode(n *union.Node) (p9.QID, error) {
	a, err := n.Attr()
	if err != nil {
		return p9.QID{}, errno(err)
	}
	return qidOf(&a), nil
}

// Link implements p9.File.Link: newName in f for the object of target.
func (f *file) Link(target p9.File, newName string) error {
	t, ok := target.(*file)
	if !ok {
		return linux.EINVAL
	}
	n, err := f.node.Link(t.node, newName)
	if err != nil {
		return errno(err)
	}
	n.Release()
	return nil
}

// RenameAt implements p9.File.RenameAt.
func (f *file) RenameAt(oldName string, newDir p9.File, newName string) error {
	d, ok := newDir.(*file)
	if !ok {
		return linux.EINVAL
	}
	return errno(f.node.Rename(oldName, d.node, newName))
}

// UnlinkAt implements p9.File.UnlinkAt; flags is 0 or AT_REMOVEDIR.
func (f *file) UnlinkAt(name string, flags uint32) error {
	return errno(f.node.Unlink(name, flags&unix.AT_REMOVEDIR != 0))
}

// direntFixedSize is the encoded size of a p9.Dirent without its name:
// qid[13] offset[8] type[1] name-length[2].
const direntFixedSize = 24

// Readdir implements p9.File.Readdir. offset is 0 or the Offset of the last
// entry the client got; count is a size in bytes, and only entries that
// fit are returned (the library would drop the rest). Type carries the
// entry's DT_* value, which Linux uses as d_type.
func (f *file) Readdir(offset uint64, count uint32) (p9.Dirents, error) {
	uf := f.open.Load()
	if uf == nil {
		return nil, linux.EBADF
	}
	count = min(count, f.srv.maxMsize)
	max := max(int(count)/(direntFixedSize+1), 1)
	ents, err := uf.ReadDir(offset, max)
	if err != nil {
		return nil, errno(err)
	}
	out := make(p9.Dirents, 0, len(ents))
	used := 0
	for _, e := range ents {
		size := direntFixedSize + len(e.Name)
		if used+size > int(count) {
			break
		}
		used += size
		q := p9.QID{Path: e.ID}
		switch e.Type {
		case unix.DT_DIR:
			q.Type = p9.TypeDir
		case unix.DT_LNK:
			q.Type = p9.TypeSymlink
		}
		out = append(out, p9.Dirent{QID: q, Offset: e.Cookie, Type: p9.QIDType(e.Type), Name: e.Name})
	}
	if len(out) == 0 && len(ents) > 0 {
		return nil, linux.EINVAL // not even one entry fits, as getdents(2)
	}
	return out, nil
}
