package layertool

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// MergeOptions tune Merge.
type MergeOptions struct {
	// InPlace folds the upper into the single lower layer itself instead
	// of a new directory. It is the one operation that writes a lower; it
	// is not atomic (a crash leaves the lower half merged), so callers
	// must ask for it explicitly.
	InPlace  bool
	Progress Progress
}

// Merge writes the merged tree of l into dest, a new base: a plain
// directory tree without markers (dest must be empty or not exist, and lie
// outside every layer). The layers are locked as a server locks them, so
// the upper cannot change meanwhile; nothing is written to them.
//
// With InPlace, dest is ignored and the upper is folded into the single
// lower: whiteouts delete, opaque directories replace, objects move (a
// rename on one filesystem, a copy otherwise), then the upper and work
// directory are emptied.
func Merge(l Layers, dest string, opts MergeOptions) error {
	if opts.InPlace {
		return mergeInPlace(l, opts)
	}
	if dest == "" {
		return errors.New("no destination directory")
	}
	roles := l.roles()
	roles["destination"] = dest
	if err := checkApart(roles); err != nil {
		return err
	}
	lk, err := lockForWriting(l)
	if err != nil {
		return err
	}
	defer lk.release()
	// The destination is made only once the layers are known to be free.
	if err := os.Mkdir(dest, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	dl, err := lockForWriting(Layers{}, dest)
	if err != nil {
		return err
	}
	defer dl.release()
	droot, err := openRootDir(dest)
	if err != nil {
		return err
	}
	defer unix.Close(droot)
	if names, err := readNames(droot); err != nil {
		return err
	} else if len(names) > 0 {
		return fmt.Errorf("%s is not empty (merge writes into an empty directory)", dest)
	}
	s, err := openStack(l, false)
	if err != nil {
		return err
	}
	defer s.close()
	root, err := rootView(s.all())
	if err != nil {
		return err
	}
	defer root.close()
	m := &merger{s: s, c: newCopier(opts.Progress), dirs: newDirCache(droot)}
	defer m.dirs.close()
	if err := m.dir(root, droot, nil); err != nil {
		return err
	}
	// The root's own attributes are those of the topmost layer's root.
	var st unix.Stat_t
	if err := unix.Fstat(root.parts[0].fd, &st); err != nil {
		return err
	}
	rm, err := readMeta(root.parts[0].fd, ".", &st)
	if err != nil {
		return err
	}
	return m.c.applyMeta(droot, ".", &rm, &st)
}

type merger struct {
	s    *stack
	c    *copier
	dirs *dirCache
}

// dir copies the visible entries of v into the directory dfd (path dpath
// below the destination).
func (m *merger) dir(v *view, dfd int, dpath []string) error {
	ents, err := m.s.list(v)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := append(append([]string(nil), dpath...), e.name)
		src := v.parts[e.at]
		if fileType(&e.st) != unix.S_IFDIR {
			if err := m.object(v, e, dfd, p); err != nil {
				return fmt.Errorf("/%s: %w", joinComps(p), err)
			}
			continue
		}
		if err := unix.Mkdirat(dfd, e.name, 0o700); err != nil {
			return fmt.Errorf("/%s: %w", joinComps(p), err)
		}
		sub, err := openDirAt(dfd, e.name)
		if err != nil {
			return err
		}
		cv, _, err := m.s.childFollow(v, e)
		if err == nil {
			err = m.dir(cv, sub, p)
			cv.close()
		}
		unix.Close(sub)
		if err != nil {
			return err
		}
		md, err := readMeta(src.fd, e.name, &e.st)
		if err == nil {
			err = m.c.applyMeta(dfd, e.name, &md, &e.st)
		}
		if err != nil {
			return fmt.Errorf("/%s: %w", joinComps(p), err)
		}
		report(m.c.progress, 1, 0)
	}
	return nil
}

func joinComps(c []string) string {
	out := ""
	for i, s := range c {
		if i > 0 {
			out += "/"
		}
		out += s
	}
	return out
}

// object copies the non-directory entry e of v, a metadata-only copy with
// its lower data (follow.go).
func (m *merger) object(v *view, e entry, dfd int, p []string) error {
	src := v.parts[e.at]
	var data *dataSource
	if src.l == m.s.upper && fileType(&e.st) == unix.S_IFREG {
		d, ok, err := m.s.metacopyData(src.fd, e.name, &view{parts: v.parts[e.at+1:]})
		if err != nil {
			return err
		}
		if ok {
			defer d.close()
			data = &d
		}
	}
	return m.c.copyObject(src.fd, e.name, &e.st, dfd, p, m.dirs, data)
}
