package torture

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/union9p/union9p/test/p9wire"
	"golang.org/x/sys/unix"
)

// maxHashed: larger files are compared by size in tree views (the big
// files' data is checked on the host by checkWhole).
const maxHashed = 1 << 20

// entry is one object of a tree view, in one comparable line.
func entry(path string, mode, uid, gid uint32, size int64, data, target string, xattrs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s mode=%07o uid=%d gid=%d", path, mode, uid, gid)
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		fmt.Fprintf(&b, " size=%d data=%s", size, data)
	case unix.S_IFLNK:
		fmt.Fprintf(&b, " target=%q", target)
	}
	sort.Strings(xattrs)
	for _, x := range xattrs {
		b.WriteString(" " + x)
	}
	return b.String()
}

func hash(p []byte) string { h := sha256.Sum256(p); return hex.EncodeToString(h[:8]) }

// hostView describes the tree under root (the kernel's overlayfs mount).
func hostView(root string) ([]string, error) {
	var out []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		data, target := "", ""
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			data = "unread"
			if st.Size <= maxHashed {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				data = hash(b)
			}
		case unix.S_IFLNK:
			target, _ = os.Readlink(p)
		}
		var xs []string
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			sz, _ := unix.Listxattr(p, nil)
			if sz > 0 {
				buf := make([]byte, sz)
				n, _ := unix.Listxattr(p, buf)
				for _, name := range strings.Split(string(buf[:n]), "\x00") {
					if strings.HasPrefix(name, "user.") {
						v := make([]byte, 4096)
						vn, _ := unix.Getxattr(p, name, v)
						xs = append(xs, name+"="+hash(v[:max(vn, 0)]))
					}
				}
			}
		}
		out = append(out, entry(rel, st.Mode, st.Uid, st.Gid, st.Size, data, target, xs))
		return nil
	})
	sort.Strings(out)
	return out, err
}

// unionView describes the tree union9p serves, over 9P.
type unionView struct {
	c    *p9wire.Client
	next uint32
	out  []string
}

func (v *unionView) fid() uint32 { v.next++; return v.next }

func viewUnion(sock string) ([]string, error) {
	c, err := p9wire.Dial("unix", sock, 1<<20)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Attach(0, "root", "", 0); err != nil {
		return nil, err
	}
	v := &unionView{c: c, next: 10}
	if err := v.walk(0, "."); err != nil {
		return nil, err
	}
	sort.Strings(v.out)
	return v.out, nil
}

// walk describes the object at fid (path rel) and, for a directory, its
// entries. fid is not clunked.
func (v *unionView) walk(fid uint32, rel string) error {
	a, err := v.c.Getattr(fid, p9wire.GetattrBasic)
	if err != nil {
		return fmt.Errorf("getattr %s: %w", rel, err)
	}
	data, target := "", ""
	switch a.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		data = "unread"
		if a.Size <= maxHashed {
			f := v.fid()
			if _, err := v.c.Walk(fid, f); err != nil {
				return err
			}
			if _, _, err := v.c.Lopen(f, unix.O_RDONLY); err != nil {
				v.c.Clunk(f)
				return fmt.Errorf("open %s: %w", rel, err)
			}
			var b []byte
			for {
				p, err := v.c.Read(f, uint64(len(b)), 1<<19)
				if err != nil {
					v.c.Clunk(f)
					return fmt.Errorf("read %s: %w", rel, err)
				}
				if len(p) == 0 {
					break
				}
				b = append(b, p...)
			}
			v.c.Clunk(f)
			data = hash(b)
		}
	case unix.S_IFLNK:
		if target, err = v.c.Readlink(fid); err != nil {
			return err
		}
	}
	var xs []string
	if a.Mode&unix.S_IFMT != unix.S_IFLNK {
		names, err := v.c.GetXattr(fid, v.fid(), "")
		if err != nil {
			return fmt.Errorf("list xattrs %s: %w", rel, err)
		}
		for _, name := range strings.Split(string(names), "\x00") {
			if strings.HasPrefix(name, "user.") {
				val, err := v.c.GetXattr(fid, v.fid(), name)
				if err != nil {
					return fmt.Errorf("xattr %s %s: %w", rel, name, err)
				}
				xs = append(xs, name+"="+hash(val))
			}
		}
	}
	v.out = append(v.out, entry(rel, a.Mode, a.UID, a.GID, int64(a.Size), data, target, xs))
	if a.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	d := v.fid()
	if _, err := v.c.Walk(fid, d); err != nil {
		return err
	}
	defer v.c.Clunk(d)
	if _, _, err := v.c.Lopen(d, unix.O_RDONLY|unix.O_DIRECTORY); err != nil {
		return fmt.Errorf("opendir %s: %w", rel, err)
	}
	var names []string
	off := uint64(0)
	for {
		ents, err := v.c.Readdir(d, off, 8192)
		if err != nil {
			return fmt.Errorf("readdir %s: %w", rel, err)
		}
		if len(ents) == 0 {
			break
		}
		for _, e := range ents {
			if e.Name != "." && e.Name != ".." {
				names = append(names, e.Name)
			}
			off = e.Offset
		}
	}
	for _, name := range names {
		f := v.fid()
		if _, err := v.c.Walk(fid, f, name); err != nil {
			return fmt.Errorf("walk %s/%s: %w", rel, name, err)
		}
		err := v.walk(f, filepath.Join(rel, name))
		v.c.Clunk(f)
		if err != nil {
			return err
		}
	}
	return nil
}
