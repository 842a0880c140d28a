package layertool

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// VacuumOptions tune Vacuum.
type VacuumOptions struct {
	Progress Progress
}

// VacuumStats counts what Vacuum removed.
type VacuumStats struct {
	Removed int
}

// Vacuum drops from the upper the copied-up objects that equal the lower
// objects they hide (type, owner, mode, times, xattrs, data, link count),
// and the directories left empty that equal theirs, so that the merged
// tree does not change: a directory it keeps gets its times back. Objects
// with several hard links in the upper stay (dropping one would change the
// others' link count). The layers are locked as a server locks them.
func Vacuum(l Layers, opts VacuumOptions) (VacuumStats, error) {
	if err := checkApart(l.roles()); err != nil {
		return VacuumStats{}, err
	}
	lk, err := lockForWriting(l)
	if err != nil {
		return VacuumStats{}, err
	}
	defer lk.release()
	s, err := openStack(l, true)
	if err != nil {
		return VacuumStats{}, err
	}
	defer s.close()
	before, err := rootView(s.lowers)
	if err != nil {
		return VacuumStats{}, err
	}
	defer before.close()
	v := &vacuumer{s: s, opts: opts}
	var st unix.Stat_t
	if err := unix.Fstat(s.upper.fd, &st); err != nil {
		return VacuumStats{}, err
	}
	_, err = v.dir("/", s.upper.fd, before, &st)
	return v.stats, err
}

type vacuumer struct {
	s     *stack
	opts  VacuumOptions
	stats VacuumStats
}

// dir vacuums the upper directory ufd (lstat st, taken before any change)
// against the lowers' view below (nil if they show no directory here). It
// reports whether ufd is empty afterwards.
func (v *vacuumer) dir(p string, ufd int, below *view, st *unix.Stat_t) (bool, error) {
	names, err := readNames(ufd)
	if err != nil {
		return false, fmt.Errorf("%s: %w", p, err)
	}
	left := len(names)
	for _, name := range names {
		cp := joinPath(p, name)
		var cst unix.Stat_t
		if err := lstatAt(ufd, name, &cst); err != nil {
			return false, fmt.Errorf("%s: %w", cp, err)
		}
		if v.s.isWhiteout(ufd, name, &cst) {
			continue
		}
		old, existed, err := v.s.lookup(below, name)
		if err != nil {
			return false, fmt.Errorf("%s: %w", cp, err)
		}
		if fileType(&cst) != unix.S_IFDIR {
			if !existed || cst.Nlink != 1 {
				continue
			}
			if fileType(&cst) == unix.S_IFREG {
				// A metadata-only copy holds no data: removing it would
				// save an inode only, and one with a redirect shows
				// another path's data. Kept.
				mc, err := v.s.isMetacopyAt(ufd, name)
				if err != nil {
					return false, fmt.Errorf("%s: %w", cp, err)
				}
				if mc {
					continue
				}
			}
			same, err := sameObject(ufd, &cst, below.parts[old.at].fd, &old.st, name)
			if err != nil {
				return false, fmt.Errorf("%s: %w", cp, err)
			}
			if same {
				if err := unix.Unlinkat(ufd, name, 0); err != nil {
					return false, fmt.Errorf("%s: %w", cp, err)
				}
				v.stats.Removed++
				left--
				report(v.opts.Progress, 1, 0)
			}
			continue
		}
		sub, err := openDirAt(ufd, name)
		if err != nil {
			return false, fmt.Errorf("%s: %w", cp, err)
		}
		opaque := v.s.isOpaque(v.s.upper, sub)
		redirect, err := v.s.upperRedirect(ufd, name)
		if err != nil {
			unix.Close(sub)
			return false, fmt.Errorf("%s: %w", cp, err)
		}
		var cv *view
		switch {
		case opaque:
		case redirect != "":
			// A renamed directory: its entries hide those of the lower
			// directory it came from (follow.go); it stays, as its
			// redirect is what the merged tree shows.
			if cv, err = v.s.redirectedLowers(below, redirect); err != nil {
				unix.Close(sub)
				return false, fmt.Errorf("%s: %w", cp, err)
			}
		case existed && fileType(&old.st) == unix.S_IFDIR:
			if cv, err = v.s.child(below, old); err != nil {
				unix.Close(sub)
				return false, fmt.Errorf("%s: %w", cp, err)
			}
		}
		empty, err := v.dir(cp, sub, cv, &cst)
		unix.Close(sub)
		if err == nil && empty && cv != nil && redirect == "" {
			// cst was taken before the directory's entries went, so its
			// times are compared as they were.
			var same bool
			if same, err = sameObject(ufd, &cst, below.parts[old.at].fd, &old.st, name); err == nil && same {
				if err = unix.Unlinkat(ufd, name, unix.AT_REMOVEDIR); err == nil {
					v.stats.Removed++
					left--
				}
			}
		}
		cv.close()
		if err != nil {
			return false, fmt.Errorf("%s: %w", cp, err)
		}
	}
	if left != len(names) {
		// Removing entries changed the directory's times: give them back,
		// the merged tree shows them.
		if err := unix.UtimesNanoAt(ufd, ".", []unix.Timespec{st.Atim, st.Mtim}, 0); err != nil {
			return false, fmt.Errorf("%s: %w", p, err)
		}
	}
	return left == 0, nil
}
