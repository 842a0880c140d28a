package layertool

import (
	"sort"

	"golang.org/x/sys/unix"
)

// A view is one directory of a merged tree: the directories of that path
// in each layer that takes part, top-down, as overlayfs merges them. The
// "before" tree of an upper is the view of its lowers alone.

// part is one layer's directory in a view; fd is owned by the view.
type part struct {
	l  *layer
	fd int
}

type view struct {
	parts []part
}

func (v *view) close() {
	if v == nil {
		return
	}
	for _, p := range v.parts {
		unix.Close(p.fd)
	}
	v.parts = nil
}

// rootView is the merged root of layers.
func rootView(layers []*layer) (*view, error) {
	v := &view{}
	for _, l := range layers {
		fd, err := unix.Openat(l.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			v.close()
			return nil, err
		}
		v.parts = append(v.parts, part{l: l, fd: fd})
	}
	return v, nil
}

// entry is a name visible in a view: the object of the topmost layer that
// has it.
type entry struct {
	name string
	at   int // index of the part that holds the object
	st   unix.Stat_t
}

// list returns the visible entries of v, sorted by name.
func (s *stack) list(v *view) ([]entry, error) {
	if v == nil {
		return nil, nil
	}
	seen := map[string]bool{}
	var out []entry
	for i, p := range v.parts {
		names, err := readNames(p.fd)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			if seen[name] || isMarkerName(p.l, name) {
				continue
			}
			seen[name] = true
			var st unix.Stat_t
			if err := lstatAt(p.fd, name, &st); err != nil {
				if err == unix.ENOENT {
					continue
				}
				return nil, err
			}
			if s.isWhiteout(p.fd, name, &st) {
				continue
			}
			out = append(out, entry{name: name, at: i, st: st})
		}
		for h := range ociHidden(p.l, names) {
			seen[h] = true
		}
		if s.isOpaque(p.l, p.fd) {
			break
		}
	}
	sortEntries(out)
	return out, nil
}

// lookup finds the visible entry name in v.
func (s *stack) lookup(v *view, name string) (entry, bool, error) {
	if v == nil {
		return entry{}, false, nil
	}
	for i, p := range v.parts {
		var st unix.Stat_t
		err := lstatAt(p.fd, name, &st)
		if err == nil && !isMarkerName(p.l, name) {
			if s.isWhiteout(p.fd, name, &st) {
				return entry{}, false, nil
			}
			return entry{name: name, at: i, st: st}, true, nil
		}
		if err != nil && err != unix.ENOENT {
			return entry{}, false, err
		}
		if p.l.lower && hasOCIWhiteout(p.fd, name) {
			return entry{}, false, nil
		}
		if s.isOpaque(p.l, p.fd) {
			return entry{}, false, nil
		}
	}
	return entry{}, false, nil
}

// child opens the merged directory of the directory entry e of v.
func (s *stack) child(v *view, e entry) (*view, error) {
	c := &view{}
	top := v.parts[e.at]
	fd, err := openDirAt(top.fd, e.name)
	if err != nil {
		return nil, err
	}
	c.parts = append(c.parts, part{l: top.l, fd: fd})
	if s.isOpaque(top.l, fd) || (top.l.lower && hasOCIWhiteout(top.fd, e.name)) {
		return c, nil
	}
	for _, p := range v.parts[e.at+1:] {
		var st unix.Stat_t
		err := lstatAt(p.fd, e.name, &st)
		if err != nil && err != unix.ENOENT {
			c.close()
			return nil, err
		}
		if err == nil {
			if fileType(&st) != unix.S_IFDIR {
				break // a whiteout or a non-directory ends the merge
			}
			fd, err := openDirAt(p.fd, e.name)
			if err != nil {
				c.close()
				return nil, err
			}
			c.parts = append(c.parts, part{l: p.l, fd: fd})
			if s.isOpaque(p.l, fd) {
				break
			}
		}
		if p.l.lower && hasOCIWhiteout(p.fd, e.name) {
			break
		}
	}
	return c, nil
}

func hasOCIWhiteout(dirfd int, name string) bool {
	var st unix.Stat_t
	if len(name)+4 > 255 {
		return false
	}
	return lstatAt(dirfd, ".wh."+name, &st) == nil
}

func sortEntries(es []entry) {
	sort.Slice(es, func(i, j int) bool { return es[i].name < es[j].name })
}
