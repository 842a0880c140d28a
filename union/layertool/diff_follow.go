package layertool

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Diff below a renamed (redirected) upper directory: its merged content
// is the upper directory over the lower directory it was renamed from
// (follow.go), so entries the upper does not hold show there too. Such a
// subtree is compared as merged trees: each visible entry against the
// lowers' object of the same path (before), and what before shows that
// the subtree does not is deleted.

// mergedDir compares the merged directory mv at path p with the lowers'
// view before of the same path (nil when they show no directory there).
func (d *differ) mergedDir(p string, mv, before *view) error {
	ents, err := d.s.list(mv)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	visible := make(map[string]bool, len(ents))
	for _, e := range ents {
		visible[e.name] = true
		cp := joinPath(p, e.name)
		old, existed, err := d.s.lookup(before, e.name)
		if err != nil {
			return fmt.Errorf("%s: %w", cp, err)
		}
		part := mv.parts[e.at]
		switch {
		case !existed:
			d.add('A', cp)
		case e.st.Dev == old.st.Dev && e.st.Ino == old.st.Ino:
			// the very object the lowers show there
		case !d.opts.Content:
			d.add('C', cp)
		default:
			same, err := d.s.sameFollowed(part.fd, &e.st, part.l == d.s.upper, &view{parts: mv.parts[e.at+1:]},
				before.parts[old.at].fd, &old.st, e.name)
			if err != nil {
				return fmt.Errorf("%s: %w", cp, err)
			}
			if !same {
				d.add('C', cp)
			}
		}
		if fileType(&e.st) != unix.S_IFDIR {
			continue
		}
		cmv, _, err := d.s.childFollow(mv, e)
		if err != nil {
			return fmt.Errorf("%s: %w", cp, err)
		}
		var cb *view
		if existed && fileType(&old.st) == unix.S_IFDIR {
			if cb, err = d.s.child(before, old); err != nil {
				cmv.close()
				return fmt.Errorf("%s: %w", cp, err)
			}
		}
		err = d.mergedDir(cp, cmv, cb)
		cmv.close()
		cb.close()
		if err != nil {
			return err
		}
	}
	olds, err := d.s.list(before)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	for _, o := range olds {
		if !visible[o.name] {
			d.add('D', joinPath(p, o.name))
		}
	}
	return nil
}

// renamed compares the redirected upper directory name of ufd (path cp,
// lstat st) as a merged subtree; before is the lowers' view of its parent
// and old what they show at cp (existed).
func (d *differ) renamed(cp string, ufd int, name string, st *unix.Stat_t, before *view, old entry, existed bool) error {
	parent := &view{parts: []part{{l: d.s.upper, fd: ufd}}}
	if before != nil {
		parent.parts = append(parent.parts, before.parts...)
	}
	// parent borrows every descriptor: it is not closed.
	mv, _, err := d.s.childFollow(parent, entry{name: name, at: 0, st: *st})
	if err != nil {
		return fmt.Errorf("%s: %w", cp, err)
	}
	defer mv.close()
	var below *view
	if existed && fileType(&old.st) == unix.S_IFDIR {
		if below, err = d.s.child(before, old); err != nil {
			return fmt.Errorf("%s: %w", cp, err)
		}
		defer below.close()
	}
	return d.mergedDir(cp, mv, below)
}
