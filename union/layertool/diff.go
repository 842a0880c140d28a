package layertool

import (
	"fmt"
	"sort"

	"golang.org/x/sys/unix"
)

// Change is one line of a diff, as `docker diff` prints it.
type Change struct {
	Kind byte   // 'A' added, 'C' changed, 'D' deleted
	Path string // absolute in the merged tree: "/etc/passwd"
}

func (c Change) String() string { return fmt.Sprintf("%c %s", c.Kind, c.Path) }

// DiffOptions tune Diff.
type DiffOptions struct {
	// Content leaves out objects of the upper whose type, attributes,
	// xattrs and data equal those of the object they hide (copied up but
	// not changed since, or changed back).
	Content bool
}

// Diff returns what the upper layer changes in the merged tree of the
// lowers, sorted by path: a path is added (A) when the lowers do not show
// it, changed (C) when the upper holds an object for a path the lowers
// show, deleted (D) when the lowers show it and the merged tree does not.
// A deleted directory is one line; its contents are implied. Diff only
// reads; running it while a server writes the upper may see a copy-up
// half done.
func Diff(l Layers, opts DiffOptions) ([]Change, error) {
	s, err := openStack(l, true)
	if err != nil {
		return nil, err
	}
	defer s.close()
	up, err := rootView([]*layer{s.upper})
	if err != nil {
		return nil, err
	}
	defer up.close()
	before, err := rootView(s.lowers)
	if err != nil {
		return nil, err
	}
	defer before.close()
	d := &differ{s: s, opts: opts}
	if err := d.dir("/", up.parts[0].fd, before); err != nil {
		return nil, err
	}
	sort.Slice(d.out, func(i, j int) bool { return d.out[i].Path < d.out[j].Path })
	return d.out, nil
}

type differ struct {
	s    *stack
	opts DiffOptions
	out  []Change
}

func (d *differ) add(kind byte, p string) { d.out = append(d.out, Change{kind, p}) }

// dir compares the upper directory ufd at path p with the lowers' view of
// the same path (nil when the lowers show no directory there).
func (d *differ) dir(p string, ufd int, before *view) error {
	names, err := readNames(ufd)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	inUpper := make(map[string]bool, len(names))
	for _, name := range names {
		inUpper[name] = true
		cp := joinPath(p, name)
		var st unix.Stat_t
		if err := lstatAt(ufd, name, &st); err != nil {
			return fmt.Errorf("%s: %w", cp, err)
		}
		old, existed, err := d.s.lookup(before, name)
		if err != nil {
			return fmt.Errorf("%s: %w", cp, err)
		}
		if d.s.isWhiteout(ufd, name, &st) {
			if existed {
				d.add('D', cp)
			}
			continue
		}
		if !existed {
			d.add('A', cp)
		} else {
			changed := true
			if d.opts.Content {
				lp := before.parts[old.at]
				same, err := d.s.sameFollowed(ufd, &st, true, before, lp.fd, &old.st, name)
				if err != nil {
					return fmt.Errorf("%s: %w", cp, err)
				}
				changed = !same
			}
			if changed {
				d.add('C', cp)
			}
		}
		if fileType(&st) != unix.S_IFDIR {
			continue
		}
		if redirect, err := d.s.upperRedirect(ufd, name); err != nil {
			return fmt.Errorf("%s: %w", cp, err)
		} else if redirect != "" {
			if err := d.renamed(cp, ufd, name, &st, before, old, existed); err != nil {
				return err
			}
			continue
		}
		sub, err := openDirAt(ufd, name)
		if err != nil {
			return fmt.Errorf("%s: %w", cp, err)
		}
		var below *view
		if existed && fileType(&old.st) == unix.S_IFDIR {
			if below, err = d.s.child(before, old); err != nil {
				unix.Close(sub)
				return fmt.Errorf("%s: %w", cp, err)
			}
		}
		if below != nil && d.s.isOpaque(d.s.upper, sub) {
			// The lowers' entries the opaque directory hides are deleted.
			if err := d.hidden(cp, sub, below); err != nil {
				below.close()
				unix.Close(sub)
				return err
			}
			// Names the upper has again are compared with what they hid.
		}
		err = d.dir(cp, sub, below)
		below.close()
		unix.Close(sub)
		if err != nil {
			return err
		}
	}
	return nil
}

// hidden adds a D for every entry of below that the opaque upper directory
// ufd (path p) does not hold.
func (d *differ) hidden(p string, ufd int, below *view) error {
	ents, err := d.s.list(below)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	for _, e := range ents {
		var st unix.Stat_t
		err := lstatAt(ufd, e.name, &st)
		if err == unix.ENOENT {
			d.add('D', joinPath(p, e.name))
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", joinPath(p, e.name), err)
		}
		// A whiteout in an opaque directory is reported by dir.
	}
	return nil
}
