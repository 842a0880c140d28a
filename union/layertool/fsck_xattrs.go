package layertool

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// The overlay markers fsck knows, relative to a namespace. Their formats
// are the kernel's (Documentation/filesystems/overlayfs.rst, fs/overlayfs):
// redirect is a path, absolute from the layer root or a single name
// relative to the parent; origin is a struct ovl_fb file handle; metacopy
// marks a file whose data is in the lower object.
var overlayMarkers = []string{"opaque", "whiteout", "redirect", "origin", "metacopy", "impure", "nlink", "upper", "union9p.id"}

// xattrs checks the xattrs of name in ufd (path p).
func (f *fsck) xattrs(ufd int, name, p string, st *unix.Stat_t) error {
	names, err := listXattrs(ufd, name)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	ns, other := string(f.s.ns), string(otherNamespace(f.s.ns))
	for _, x := range names {
		switch {
		case strings.HasPrefix(x, other) && isMarker(x[len(other):]):
			if err := f.wrongNamespace(ufd, name, p, x, ns+x[len(other):]); err != nil {
				return err
			}
		case strings.HasPrefix(x, mappedPrefix):
			if err := f.mapped(ufd, name, p, x); err != nil {
				return err
			}
		case x == ns+"redirect":
			if err := f.redirect(ufd, name, p, st); err != nil {
				return err
			}
		case x == ns+"origin":
			if err := f.origin(ufd, name, p); err != nil {
				return err
			}
		case x == ns+"union9p.id":
			if v, err := getXattr(ufd, name, x); err == nil && len(v) != 8 {
				if err := f.found(p, fmt.Sprintf("%s of %d bytes (want 8): cannot be parsed", x, len(v)), func() error {
					return removeXattr(ufd, name, x)
				}); err != nil {
					return err
				}
			}
		case x == ns+"metacopy":
			if err := f.metacopy(ufd, name, p, st); err != nil {
				return err
			}
		}
	}
	return nil
}

func isMarker(rest string) bool {
	for _, m := range overlayMarkers {
		if rest == m {
			return true
		}
	}
	return false
}

// wrongNamespace moves a marker into the layers' namespace.
func (f *fsck) wrongNamespace(ufd int, name, p, from, to string) error {
	v, err := getXattr(ufd, name, from)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return f.found(p, fmt.Sprintf("%s is in the wrong namespace (these layers use %s*)", from, f.s.ns), func() error {
		if _, err := getXattr(ufd, name, to); err == unix.ENODATA {
			if err := setXattr(ufd, name, to, v); err != nil {
				return err
			}
			if strings.HasSuffix(to, "whiteout") {
				// Readers look for xattr whiteouts only where the parent
				// says so.
				if err := whiteout.NoteWhiteout(ufd, whiteout.XattrWhiteouts, f.s.ns); err != nil {
					return err
				}
			}
		}
		return removeXattr(ufd, name, from)
	})
}

// mapped checks one mapped-xattr owner field.
func (f *fsck) mapped(ufd int, name, p, x string) error {
	want := map[string]int{"uid": 4, "gid": 4, "mode": 4, "rdev": 8}[x[len(mappedPrefix):]]
	if want == 0 {
		return nil
	}
	v, err := getXattr(ufd, name, x)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if len(v) == want {
		return nil
	}
	return f.found(p, fmt.Sprintf("mapped owner %s of %d bytes (want %d): cannot be parsed", x, len(v), want), func() error {
		return removeXattr(ufd, name, x)
	})
}

// redirectTarget checks a redirect value and returns the lower path it
// names (components from the root), given the object's own path p.
func redirectTarget(v []byte, p string) ([]string, error) {
	s := string(bytes.TrimRight(v, "\x00"))
	if s == "" {
		return nil, fmt.Errorf("empty")
	}
	var comps []string
	if strings.HasPrefix(s, "/") {
		comps = strings.Split(s[1:], "/")
	} else {
		if strings.Contains(s, "/") {
			return nil, fmt.Errorf("relative path with several components")
		}
		own := splitPath(p)
		comps = append(own[:len(own)-1:len(own)-1], s) // beside the object
	}
	for _, c := range comps {
		if c == "" || c == "." || c == ".." {
			return nil, fmt.Errorf("component %q", c)
		}
	}
	return comps, nil
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// lookupLowerPath finds the object at comps in the lowers' merged tree.
// The caller closes the returned view.
func (f *fsck) lookupLowerPath(comps []string) (*view, entry, bool, error) {
	v := f.lowerRoot
	var owned *view
	for i, c := range comps {
		e, ok, err := f.s.lookup(v, c)
		if err != nil || !ok {
			owned.close()
			return nil, entry{}, false, err
		}
		if i == len(comps)-1 {
			return owned, e, true, nil
		}
		if fileType(&e.st) != unix.S_IFDIR {
			owned.close()
			return nil, entry{}, false, nil
		}
		next, err := f.s.child(v, e)
		owned.close()
		if err != nil {
			return nil, entry{}, false, err
		}
		v, owned = next, next
	}
	return owned, entry{}, false, nil
}

// redirect checks a redirect xattr.
func (f *fsck) redirect(ufd int, name, p string, st *unix.Stat_t) error {
	x := string(f.s.ns) + "redirect"
	v, err := getXattr(ufd, name, x)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	// Without a redirect the object shows only its upper content when a
	// lower has its own name: make that explicit for a directory.
	fix := func() error {
		if err := removeXattr(ufd, name, x); err != nil {
			return err
		}
		if fileType(st) == unix.S_IFDIR {
			return setXattr(ufd, name, string(f.s.ns)+"opaque", []byte("y"))
		}
		return nil
	}
	if fileType(st) != unix.S_IFDIR {
		// overlayfs follows a file's redirect only while it is a
		// metadata-only copy; one left by a rename of a copy whose data
		// came up later is never read (the kernel leaves such ones).
		if mc, err := f.s.isMetacopyAt(ufd, name); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		} else if !mc {
			return nil
		}
	}
	comps, err := redirectTarget(v, p)
	if err != nil {
		return f.found(p, fmt.Sprintf("redirect %q points outside the layers (%v)", v, err), fix)
	}
	e, ok, err := f.lowerAt(string(v), comps)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if !ok || fileType(&e.st) != fileType(st) {
		return f.found(p, fmt.Sprintf("redirect %q points at no lower %s", v, kindName(st)), fix)
	}
	return nil
}

func kindName(st *unix.Stat_t) string {
	if fileType(st) == unix.S_IFDIR {
		return "directory"
	}
	return "file"
}

// origin checks an overlay.origin file handle: its format always, and as
// root that it names an object inside a lower layer.
func (f *fsck) origin(ufd int, name, p string) error {
	x := string(f.s.ns) + "origin"
	v, err := getXattr(ufd, name, x)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	fix := func() error { return removeXattr(ufd, name, x) }
	// struct ovl_fb: version 0, magic 0xfb, len, flags, type, uuid[16], fid.
	if len(v) < 21 || v[0] != 0 || v[1] != 0xfb || int(v[2]) != len(v) {
		return f.found(p, fmt.Sprintf("origin xattr of %d bytes cannot be parsed (not an overlayfs file handle)", len(v)), fix)
	}
	if os.Geteuid() != 0 {
		return nil // opening by handle needs CAP_DAC_READ_SEARCH
	}
	h := unix.NewFileHandle(int32(v[4]), v[21:])
	for _, l := range f.s.lowers {
		fd, err := unix.OpenByHandleAt(l.fd, h, unix.O_PATH|unix.O_CLOEXEC)
		if err != nil {
			continue
		}
		target, _ := os.Readlink(procPath(fd))
		unix.Close(fd)
		for _, ll := range f.s.lowers {
			root, _ := os.Readlink(procPath(ll.fd))
			if root != "" && within(target, root) {
				return nil
			}
		}
		return f.found(p, fmt.Sprintf("origin names %s, outside the lower layers", target), fix)
	}
	return f.found(p, "origin names no object of a lower layer", fix)
}

// metacopy checks that a metadata-only copy has its data below.
func (f *fsck) metacopy(ufd int, name, p string, st *unix.Stat_t) error {
	if fileType(st) != unix.S_IFREG {
		return nil
	}
	comps, r := splitPath(p), name
	if v, err := getXattr(ufd, name, string(f.s.ns)+"redirect"); err == nil {
		if c, err := redirectTarget(v, p); err == nil {
			comps, r = c, string(v)
		}
	}
	e, ok, err := f.lowerAt(r, comps)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if ok && fileType(&e.st) == unix.S_IFREG {
		return nil
	}
	pr := Problem{Path: p, What: "metacopy file without lower data"}
	if f.repair {
		// The data cannot be had back: the file goes; a whiteout keeps
		// whatever a lower shows under its name hidden, as it was.
		_, below, err := f.lowerOfOwnPath(p)
		if err != nil {
			return err
		}
		if err := unix.Unlinkat(ufd, name, 0); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if below {
			wf := whiteout.XattrWhiteouts
			if os.Geteuid() == 0 {
				wf = whiteout.DeviceWhiteouts
			}
			if err := whiteout.Make(ufd, name, wf, f.s.ns); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if err := whiteout.NoteWhiteout(ufd, wf, f.s.ns); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		pr.Fixed, pr.Lost = true, "removed: its data was lost"
	}
	f.problems = append(f.problems, pr)
	return nil
}

// lowerOfOwnPath reports whether the lowers show something at path p.
func (f *fsck) lowerOfOwnPath(p string) (entry, bool, error) {
	owned, e, ok, err := f.lookupLowerPath(splitPath(p))
	owned.close()
	return e, ok, err
}

// lowerAt finds the lower object a redirect r (or a plain name) of an
// entry of the directory being checked names: an absolute one at comps
// from the lower roots, a relative one in that directory's lower view
// (f.below: below a renamed ancestor, its redirect's directories).
func (f *fsck) lowerAt(r string, comps []string) (entry, bool, error) {
	if strings.HasPrefix(r, "/") {
		owned, e, ok, err := f.lookupLowerPath(comps)
		owned.close()
		return e, ok, err
	}
	return f.s.lookup(f.below, r)
}
