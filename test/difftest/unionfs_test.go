package difftest

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// unionFS drives package union as a 9P server would: every path is walked
// from the root with Node.Lookup, one component at a time, and every node
// is released after the operation.
type unionFS struct {
	u     *union.Union
	root  *union.Node
	owner union.Owner
	// readDirChunk is how many entries one ReadDir call asks for; small,
	// so that listings continue from cookies as the kernel's do.
	readDirChunk int
	// held, when not nil, keeps a node of every directory walked, by
	// path, and walks start from the longest held prefix, as a 9P client
	// keeps fids of directories across operations: a held node must see
	// what other nodes did since (copy-up, new entries, whiteouts).
	held map[string]*union.Node
}

var _ fsys = (*unionFS)(nil)

func openUnionFS(opts union.Options) (*unionFS, error) {
	u, err := union.Open(opts)
	if err != nil {
		return nil, err
	}
	root, err := u.Root()
	if err != nil {
		u.Close()
		return nil, err
	}
	return &unionFS{u: u, root: root, readDirChunk: 3}, nil
}

func (f *unionFS) Close() error {
	f.Forget("")
	f.root.Release()
	return f.u.Close()
}

// holdDirs makes walks keep and reuse directory nodes (see held).
func (f *unionFS) holdDirs() { f.held = map[string]*union.Node{} }

// Forget drops the held nodes of p and everything below it ("" is all).
func (f *unionFS) Forget(p string) {
	for k, n := range f.held {
		if p == "" || k == p || strings.HasPrefix(k, p+"/") {
			n.Release()
			delete(f.held, k)
		}
	}
}

// walk returns a new reference to the node at p. With held nodes it
// keeps the directories it passes, and p itself only if holdLast: the
// kernel side holds exactly the directories it walks through to reach a
// parent, never the object an operation acts on.
func (f *unionFS) walk(p string) (*union.Node, error) { return f.walkHold(p, false) }

func (f *unionFS) walkHold(p string, holdLast bool) (*union.Node, error) {
	comps := splitPath(p)
	n, start := f.root.Retain(), 0
	for i := len(comps); i > 0 && f.held != nil; i-- {
		if h, ok := f.held[strings.Join(comps[:i], "/")]; ok {
			n.Release()
			n, start = h.Retain(), i
			break
		}
	}
	for i := start; i < len(comps); i++ {
		next, err := n.Lookup(comps[i])
		n.Release()
		if err != nil {
			return nil, err
		}
		n = next
		if f.held != nil && (holdLast || i < len(comps)-1) {
			if a, err := n.Attr(); err == nil && a.IsDir() {
				f.held[strings.Join(comps[:i+1], "/")] = n.Retain()
			}
		}
	}
	return n, nil
}

// withNode runs fn on the node at p.
func (f *unionFS) withNode(p string, fn func(n *union.Node) error) error {
	n, err := f.walk(p)
	if err != nil {
		return err
	}
	defer n.Release()
	return fn(n)
}

// withParent runs fn on the node of p's parent directory and p's last
// component. A parent that is not a directory gives ENOTDIR here, as a
// client's own path walk does (the kernel side's O_DIRECTORY walk gives
// the same), so that both sides fail at the same step.
func (f *unionFS) withParent(p string, fn func(dir *union.Node, name string) error) error {
	if p == "" {
		return unix.EINVAL
	}
	dir, name := splitLast(p)
	n, err := f.walkHold(dir, true)
	if err != nil {
		return err
	}
	defer n.Release()
	a, err := n.Attr()
	if err != nil {
		return err
	}
	if !a.IsDir() {
		return unix.ENOTDIR
	}
	return fn(n, name)
}

func (f *unionFS) Lstat(p string) (fileInfo, error) {
	var fi fileInfo
	err := f.withNode(p, func(n *union.Node) error {
		a, err := n.Attr()
		if err != nil {
			return err
		}
		fi = fileInfo{Mode: a.Mode, UID: a.UID, GID: a.GID, Size: int64(a.Size), Nlink: a.Nlink, Rdev: a.Rdev, Mtime: a.Mtime}
		return nil
	})
	return fi, err
}

func (f *unionFS) ReadFile(p string) ([]byte, error) {
	var out []byte
	err := f.withNode(p, func(n *union.Node) error {
		file, err := n.Open(unix.O_RDONLY)
		if err != nil {
			return err
		}
		defer file.Close()
		buf := make([]byte, 64<<10)
		for {
			m, err := file.ReadAt(buf, int64(len(out)))
			out = append(out, buf[:m]...)
			if err == io.EOF || (err == nil && m == 0) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
	return out, err
}

func (f *unionFS) ReadDir(p string) ([]dirEntry, error) {
	var out []dirEntry
	err := f.withNode(p, func(n *union.Node) error {
		file, err := n.Open(unix.O_RDONLY)
		if err != nil {
			return err
		}
		defer file.Close()
		var cookie uint64
		for range 100000 {
			ents, err := file.ReadDir(cookie, f.readDirChunk)
			if err != nil {
				return err
			}
			if len(ents) == 0 {
				return nil
			}
			for _, e := range ents {
				out = append(out, dirEntry{Name: e.Name, Type: e.Type})
			}
			cookie = ents[len(ents)-1].Cookie
		}
		return errors.New("readdir does not end: cookies loop")
	})
	return out, err
}

func (f *unionFS) Readlink(p string) (string, error) {
	var target string
	err := f.withNode(p, func(n *union.Node) error {
		var err error
		target, err = n.Readlink()
		return err
	})
	return target, err
}

func (f *unionFS) ListXattr(p string) ([]string, error) {
	var names []string
	err := f.withNode(p, func(n *union.Node) error {
		var err error
		names, err = n.ListXattr()
		return err
	})
	sort.Strings(names)
	return names, err
}

func (f *unionFS) GetXattr(p, attr string) ([]byte, error) {
	var v []byte
	err := f.withNode(p, func(n *union.Node) error {
		var err error
		v, err = n.GetXattr(attr)
		return err
	})
	return v, err
}

func (f *unionFS) Create(p string, mode uint32) error {
	return f.withParent(p, func(dir *union.Node, name string) error {
		n, file, err := dir.Create(name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, mode, f.owner)
		if err != nil {
			return err
		}
		n.Release()
		return file.Close()
	})
}

func (f *unionFS) WriteAt(p string, off int64, data []byte) error {
	return f.withNode(p, func(n *union.Node) error {
		file, err := n.Open(unix.O_WRONLY)
		if err != nil {
			return err
		}
		m, err := file.WriteAt(data, off)
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err == nil && m != len(data) {
			err = fmt.Errorf("short write: %d of %d bytes", m, len(data))
		}
		return err
	})
}

func (f *unionFS) Truncate(p string, size int64) error {
	return f.withNode(p, func(n *union.Node) error {
		return n.SetAttr(union.SetAttr{SetSize: true, Size: uint64(size)})
	})
}

func (f *unionFS) Unlink(p string) error {
	return f.withParent(p, func(dir *union.Node, name string) error { return dir.Unlink(name, false) })
}

func (f *unionFS) Rmdir(p string) error {
	return f.withParent(p, func(dir *union.Node, name string) error { return dir.Unlink(name, true) })
}

func (f *unionFS) Mkdir(p string, mode uint32) error {
	return f.withParent(p, func(dir *union.Node, name string) error {
		n, err := dir.Mkdir(name, mode, f.owner)
		if err == nil {
			n.Release()
		}
		return err
	})
}

func (f *unionFS) Rename(oldp, newp string) error {
	return f.withParent(oldp, func(olddir *union.Node, oldname string) error {
		return f.withParent(newp, func(newdir *union.Node, newname string) error {
			return olddir.Rename(oldname, newdir, newname)
		})
	})
}

func (f *unionFS) Symlink(target, p string) error {
	return f.withParent(p, func(dir *union.Node, name string) error {
		n, err := dir.Symlink(name, target, f.owner)
		if err == nil {
			n.Release()
		}
		return err
	})
}

// Link walks both parents before the link's source, in the order the
// kernel resolves linkat's paths.
func (f *unionFS) Link(oldp, newp string) error {
	return f.withParent(oldp, func(olddir *union.Node, oldname string) error {
		return f.withParent(newp, func(newdir *union.Node, newname string) error {
			target, err := olddir.Lookup(oldname)
			if err != nil {
				return err
			}
			defer target.Release()
			n, err := newdir.Link(target, newname)
			if err == nil {
				n.Release()
			}
			return err
		})
	})
}

func (f *unionFS) Chmod(p string, mode uint32) error {
	return f.withNode(p, func(n *union.Node) error {
		return n.SetAttr(union.SetAttr{SetMode: true, Mode: mode})
	})
}

func (f *unionFS) SetXattr(p, attr string, value []byte, flags int) error {
	return f.withNode(p, func(n *union.Node) error { return n.SetXattr(attr, value, flags) })
}

func (f *unionFS) RemoveXattr(p, attr string) error {
	return f.withNode(p, func(n *union.Node) error { return n.RemoveXattr(attr) })
}
