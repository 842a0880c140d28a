package layertool

import (
	"errors"
	"fmt"
	"strings"

	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// An OCI layer has no redirects and no metadata-only copies, so export
// writes what they mean (follow.go):
//
//   - a renamed (redirected) directory as an opaque directory holding its
//     whole merged content, lower parts included: unpacked over the same
//     lowers it shows what the merged tree showed, and the lowers'
//     directory of its new name stays hidden as the redirect hid it. (Its
//     old name is hidden by the whiteout the rename left there.)
//   - a metadata-only copy as a file with its lower file's bytes.
//
// Both need the lowers: without them export stops rather than writing a
// layer that loses the renamed directory's lower content.
//
// Hard links among the names a renamed directory shows stay links in the
// layer. A lower file whose other names the lowers hide, or that are not
// in the layer, is written with the names the layer holds only: the
// kernel's overlayfs reported the lower inode's link count, hidden names
// included, and an OCI layer cannot carry names nobody sees, so after an
// import its count is lower (export_links_test.go).

// lowerDir returns the lowers' view of the directory at tar path p ("" or
// "a/b/"), nil when they show none there.
func (e *exporter) lowerDir(p string) (*view, error) {
	if p == "" {
		return rootView(e.s.lowers)
	}
	pv, ent, ok, err := e.s.lowerPath(strings.TrimSuffix(p, "/"))
	if err != nil || !ok {
		return nil, err
	}
	defer pv.close()
	if fileType(&ent.st) != unix.S_IFDIR {
		return nil, nil
	}
	return e.s.child(pv, ent)
}

// metacopyData is stack.metacopyData for the upper file name of the
// directory fd at tar path p.
func (e *exporter) metacopyData(p string, fd int, name string) (dataSource, bool, error) {
	if len(e.s.lowers) == 0 {
		return dataSource{}, false, errors.New("a metadata-only copy: export needs its lowers (--lower) to read its data")
	}
	below, err := e.lowerDir(p)
	if err != nil {
		return dataSource{}, false, err
	}
	d, ok, err := e.s.metacopyData(fd, name, below)
	if d.own == nil && ok {
		d.own = below // d.dir lies in below: closed with d
	} else {
		below.close()
	}
	return d, ok, err
}

// renamed writes the redirected upper directory name of fd (tar path
// p+name, lstat st) as an opaque directory with its merged content.
func (e *exporter) renamed(p string, fd int, name string, st *unix.Stat_t) error {
	cp := p + name
	if len(e.s.lowers) == 0 {
		return fmt.Errorf("/%s: a renamed directory: export needs the lowers (--lower) to write its content", cp)
	}
	below, err := e.lowerDir(p)
	if err != nil {
		return fmt.Errorf("/%s: %w", cp, err)
	}
	parent := &view{parts: []part{{l: e.s.upper, fd: fd}}}
	if below != nil {
		parent.parts = append(parent.parts, below.parts...)
	}
	mv, _, err := e.s.childFollow(parent, entry{name: name, st: *st})
	below.close() // childFollow opened its own descriptors
	if err != nil {
		return fmt.Errorf("/%s: %w", cp, err)
	}
	defer mv.close()
	if err := e.object(fd, name, cp, st, nil, false); err != nil {
		return err
	}
	if err := e.marker(cp+"/"+whiteout.OCIOpaque, st); err != nil {
		return err
	}
	return e.merged(cp+"/", mv)
}

// merged writes every visible entry of the merged directory mv at tar path
// p ("a/b/"), recursively: below an opaque directory the layer must hold
// all of it.
func (e *exporter) merged(p string, mv *view) error {
	ents, err := e.s.list(mv)
	if err != nil {
		return fmt.Errorf("/%s: %w", p, err)
	}
	for _, ent := range ents {
		cp := p + ent.name
		part := mv.parts[ent.at]
		var data *dataSource
		if part.l == e.s.upper && fileType(&ent.st) == unix.S_IFREG {
			d, ok, err := e.s.metacopyData(part.fd, ent.name, &view{parts: mv.parts[ent.at+1:]})
			if err != nil {
				return fmt.Errorf("/%s: %w", cp, err)
			}
			if ok {
				data = &d
			}
		}
		err := e.object(part.fd, ent.name, cp, &ent.st, data, false)
		if data != nil {
			data.close()
		}
		if err != nil || fileType(&ent.st) != unix.S_IFDIR {
			if err != nil {
				return err
			}
			continue
		}
		cv, _, err := e.s.childFollow(mv, ent)
		if err != nil {
			return fmt.Errorf("/%s: %w", cp, err)
		}
		err = e.merged(cp+"/", cv)
		cv.close()
		if err != nil {
			return err
		}
	}
	return nil
}

// metacopyOf returns the lower data of the upper regular file name in
// dirfd (whose tar path is parent), a metadata-only copy, or nil when its
// lowers do not hold it.
func (e *exporter) metacopyOf(parent string, dirfd int, name string) (*dataSource, error) {
	d, ok, err := e.metacopyData(parent, dirfd, name)
	if err != nil || !ok {
		return nil, err
	}
	return &d, nil
}
