package layertool

import (
	"fmt"
	"strings"

	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// Two kinds of upper object are not the whole of their merged object, and
// diff, export, merge and vacuum follow them as overlayfs does:
//
//   - a directory with an overlay.redirect was renamed with its lower
//     parts, which live under another name: its merged content is the upper
//     directory over the lowers' directory the redirect names (a single
//     name: in the same parent's lower directories; "/a/b": from the lower
//     roots). The lowers' directory of its own name takes no part.
//   - a regular file marked overlay.metacopy holds attributes only: its
//     data is the lower file its redirect names (absolute), or else the
//     lower file of its name in the parent's lower directories.
//
// Redirects are followed on upper objects only: lowers are read as plain
// or OCI layers (a lower that was itself an upper with redirects is
// merged without them, as before). merge --in-place still refuses both
// (unfollowed.go): folding a rename into the lower would mean moving
// lower content.

// upperRedirect returns the redirect of the upper object name in dirfd,
// "" when it has none.
func (s *stack) upperRedirect(dirfd int, name string) (string, error) {
	r, err := whiteout.ReadRedirectAt(dirfd, name, s.ns)
	if err != nil {
		return "", fmt.Errorf("reading %sredirect: %w", s.ns, err)
	}
	for _, c := range strings.Split(strings.TrimPrefix(r, "/"), "/") {
		if c == "." || c == ".." {
			return "", fmt.Errorf("%sredirect %q: refused", s.ns, r)
		}
	}
	return r, nil
}

// isMetacopyAt reports whether the upper regular file name in dirfd is a
// metadata-only copy.
func (s *stack) isMetacopyAt(dirfd int, name string) (bool, error) {
	_, err := getXattr(dirfd, name, string(s.ns)+"metacopy")
	switch err {
	case nil:
		return true, nil
	case unix.ENODATA, unix.ENOTSUP:
		return false, nil
	}
	return false, err
}

// lowerPath finds path (from the lower roots) in the lowers' merged tree:
// the entry and the view of its parent (owned by the caller), ok false
// when the lowers do not show it.
func (s *stack) lowerPath(path string) (*view, entry, bool, error) {
	v, err := rootView(s.lowers)
	if err != nil {
		return nil, entry{}, false, err
	}
	comps := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, c := range comps {
		e, ok, err := s.lookup(v, c)
		if err != nil || !ok {
			v.close()
			return nil, entry{}, false, err
		}
		if i == len(comps)-1 {
			return v, e, true, nil
		}
		if fileType(&e.st) != unix.S_IFDIR {
			v.close()
			return nil, entry{}, false, nil
		}
		next, err := s.child(v, e)
		v.close()
		if err != nil {
			return nil, entry{}, false, err
		}
		v = next
	}
	v.close()
	return nil, entry{}, false, nil
}

// redirectedLowers returns the lowers' directory a redirected upper
// directory merges with (nil when they show none). below is the lowers'
// view of the upper directory's parent; it is only borrowed.
func (s *stack) redirectedLowers(below *view, redirect string) (*view, error) {
	var pv *view
	var e entry
	var ok bool
	var err error
	if strings.HasPrefix(redirect, "/") {
		pv, e, ok, err = s.lowerPath(redirect)
		defer pv.close()
	} else {
		pv = below
		e, ok, err = s.lookup(below, redirect)
	}
	if err != nil || !ok || fileType(&e.st) != unix.S_IFDIR {
		return nil, err
	}
	return s.child(pv, e)
}

// childFollow is child for the tools that follow redirects: the merged
// directory of the entry e of v, where a redirected upper directory merges
// with its redirect's lower directories instead of those of its name. It
// also reports whether it followed a redirect.
func (s *stack) childFollow(v *view, e entry) (*view, bool, error) {
	top := v.parts[e.at]
	if top.l != s.upper {
		c, err := s.child(v, e)
		return c, false, err
	}
	r, err := s.upperRedirect(top.fd, e.name)
	if err != nil || r == "" {
		c, err2 := s.child(v, e)
		if err == nil {
			err = err2
		}
		return c, false, err
	}
	fd, err := openDirAt(top.fd, e.name)
	if err != nil {
		return nil, false, err
	}
	c := &view{parts: []part{{l: top.l, fd: fd}}}
	if s.isOpaque(top.l, fd) {
		return c, true, nil
	}
	lv, err := s.redirectedLowers(&view{parts: v.parts[e.at+1:]}, r)
	if err != nil {
		c.close()
		return nil, false, err
	}
	if lv != nil {
		c.parts = append(c.parts, lv.parts...)
	}
	return c, true, nil
}

// dataSource is where the bytes of a regular file are: the object itself,
// or for a metadata-only copy its lower file.
type dataSource struct {
	dir  int // borrowed or owned as own says
	name string
	st   unix.Stat_t
	own  *view // to close when done; nil when dir is borrowed
}

func (d *dataSource) close() { d.own.close() }

// metacopyData returns the lower file that holds the data of the upper
// metadata-only copy name in ufd, whose parent's lower view is below
// (borrowed). ok is false when the file is not a metadata-only copy.
func (s *stack) metacopyData(ufd int, name string, below *view) (d dataSource, ok bool, err error) {
	mc, err := s.isMetacopyAt(ufd, name)
	if err != nil || !mc {
		return d, false, err
	}
	r, err := s.upperRedirect(ufd, name)
	if err != nil {
		return d, false, err
	}
	var v *view
	var e entry
	var found bool
	if strings.HasPrefix(r, "/") {
		v, e, found, err = s.lowerPath(r)
		d.own = v
	} else {
		if r == "" {
			r = name
		}
		v = below
		e, found, err = s.lookup(below, r)
	}
	if err == nil && (!found || fileType(&e.st) != unix.S_IFREG) {
		err = fmt.Errorf("metadata-only copy without its lower data (redirect %q): run fsck", r)
	}
	if err != nil {
		d.close()
		return dataSource{}, false, err
	}
	d.dir, d.name, d.st = v.parts[e.at].fd, e.name, e.st
	return d, true, nil
}

// sameFollowed is sameObject for an object that may be a metadata-only
// copy: the object name in xdir (lstat xst; in the upper when fromUpper,
// whose parent's lower view is below) against name in ldir (lstat lst).
func (s *stack) sameFollowed(xdir int, xst *unix.Stat_t, fromUpper bool, below *view, ldir int, lst *unix.Stat_t, name string) (bool, error) {
	if fileType(xst) != fileType(lst) {
		return false, nil
	}
	if !fromUpper || fileType(xst) != unix.S_IFREG {
		return sameObject(xdir, xst, ldir, lst, name)
	}
	d, ok, err := s.metacopyData(xdir, name, below)
	if err != nil || !ok {
		if err != nil {
			return false, err
		}
		return sameObject(xdir, xst, ldir, lst, name)
	}
	defer d.close()
	xm, err := readMeta(xdir, name, xst)
	if err != nil {
		return false, err
	}
	lm, err := readMeta(ldir, name, lst)
	if err != nil {
		return false, err
	}
	if !sameMeta(&xm, &lm) {
		return false, nil
	}
	return sameData(d.dir, d.name, ldir, name)
}
