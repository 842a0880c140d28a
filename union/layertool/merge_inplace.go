package layertool

import (
	"errors"
	"fmt"

	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// mergeInPlace folds the upper into the single lower (see Merge).
func mergeInPlace(l Layers, opts MergeOptions) error {
	if len(l.Lowers) != 1 {
		return fmt.Errorf("merge --in-place needs exactly one lower layer, not %d", len(l.Lowers))
	}
	if l.Upper == "" || l.Workdir == "" {
		return errors.New("merge --in-place needs the upper and the work directory")
	}
	if err := checkApart(l.roles()); err != nil {
		return err
	}
	lk, err := lockForWriting(l, l.Lowers[0])
	if err != nil {
		return err
	}
	s, err := openStack(l, true)
	if err != nil {
		lk.release()
		return err
	}
	m := &inPlace{s: s, c: newCopier(opts.Progress)}
	lowerRoot := s.lowers[0]
	err = s.refuseUnfollowed("merge --in-place")
	if err == nil {
		err = m.dir(s.upper.fd, lowerRoot.fd)
	}
	if err == nil {
		// The root's attributes come from the upper's root.
		var st unix.Stat_t
		if err = unix.Fstat(s.upper.fd, &st); err == nil {
			var md meta
			if md, err = readMeta(s.upper.fd, ".", &st); err == nil {
				err = m.replaceMeta(lowerRoot.fd, ".", &md, &st)
			}
		}
	}
	s.close()
	lk.release()
	if err != nil {
		return fmt.Errorf("merge in place (the lower is now partly merged; run it again to finish): %w", err)
	}
	return Reset(l)
}

type inPlace struct {
	s *stack
	c *copier
}

// dir applies the upper directory ufd to the lower directory lfd.
func (m *inPlace) dir(ufd, lfd int) error {
	names, err := readNames(ufd)
	if err != nil {
		return err
	}
	for _, name := range names {
		var st unix.Stat_t
		if err := lstatAt(ufd, name, &st); err != nil {
			return err
		}
		if m.s.isWhiteout(ufd, name, &st) {
			if err := removeAllAt(lfd, name); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			continue
		}
		var lst unix.Stat_t
		lerr := lstatAt(lfd, name, &lst)
		if fileType(&st) != unix.S_IFDIR {
			if lerr == nil {
				if err := removeAllAt(lfd, name); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			}
			if err := m.move(ufd, name, &st, lfd); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			continue
		}
		sub, err := openDirAt(ufd, name)
		if err != nil {
			return err
		}
		opaque := m.s.isOpaque(m.s.upper, sub)
		if lerr == nil && (opaque || fileType(&lst) != unix.S_IFDIR) {
			if err := removeAllAt(lfd, name); err != nil {
				unix.Close(sub)
				return fmt.Errorf("%s: %w", name, err)
			}
			lerr = unix.ENOENT
		}
		if lerr != nil {
			if err := unix.Mkdirat(lfd, name, 0o700); err != nil {
				unix.Close(sub)
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		lsub, err := openDirAt(lfd, name)
		if err == nil {
			err = m.dir(sub, lsub)
			unix.Close(lsub)
		}
		unix.Close(sub)
		if err != nil {
			return fmt.Errorf("%s/%w", name, err)
		}
		md, err := readMeta(ufd, name, &st)
		if err == nil {
			err = m.replaceMeta(lfd, name, &md, &st)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		stripMarkers(lfd, name)
	}
	return nil
}

// replaceMeta gives the lower directory name in lfd the attributes and
// xattrs of its upper copy md, as if it had been made afresh from it.
//
// A directory in the upper that merges with a lower one is a copy-up: it
// carries every xattr the merged directory shows, so an xattr that only
// the lower directory has was removed through the union (removexattr
// after the copy-up) and must go; applying md alone would only add and
// overwrite, and the removed xattr would come back in the new base.
func (m *inPlace) replaceMeta(lfd int, name string, md *meta, st *unix.Stat_t) error {
	keep := make(map[string]bool, len(md.xattrs))
	for _, x := range md.xattrs {
		keep[x.name] = true
	}
	names, err := listXattrs(lfd, name)
	if err != nil {
		return err
	}
	for _, x := range names {
		// Overlay markers are dropped by stripMarkers; mapped owners
		// are rewritten by applyMeta unprivileged, and as root they
		// are bookkeeping the base must not keep either.
		if keep[x] || whiteout.IsPrivateXattr(x) {
			continue
		}
		if err := removeXattr(lfd, name, x); err != nil && err != unix.ENODATA {
			return fmt.Errorf("xattr %s: %w", x, err)
		}
	}
	return m.c.applyMeta(lfd, name, md, st)
}

// move moves a non-directory from the upper to the lower: a rename on one
// filesystem (hard links stay linked), a copy otherwise.
func (m *inPlace) move(ufd int, name string, st *unix.Stat_t, lfd int) error {
	err := unix.Renameat(ufd, name, lfd, name)
	if err == unix.EXDEV {
		dirs := newDirCache(lfd)
		defer dirs.close()
		return m.c.copyObject(ufd, name, st, lfd, []string{name}, dirs, nil)
	}
	if err != nil {
		return err
	}
	stripMarkers(lfd, name)
	return nil
}

// stripMarkers removes the overlay bookkeeping (origin, ids) that only
// means something in an upper layer.
func stripMarkers(dirfd int, name string) {
	names, _ := listXattrs(dirfd, name)
	for _, x := range names {
		if whiteout.IsPrivateXattr(x) {
			removeXattr(dirfd, name, x)
		}
	}
}
