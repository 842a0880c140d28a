package layertool

import (
	"fmt"
	"sort"

	"golang.org/x/sys/unix"
)

// Fsck checks an upper layer and its work directory, and repairs them
// with Repair set. It finds:
//
//   - leftovers in the work directory (an interrupted copy-up);
//   - whiteouts over nothing (no lower shows the name);
//   - overlay markers in the other xattr namespace than the layers use
//     (trusted.overlay.* on a userxattr layer or the reverse), which
//     neither union9p nor overlayfs reads;
//   - redirect xattrs (overlay.redirect) that point outside the layers or
//     at no lower directory;
//   - origin xattrs (overlay.origin, a file handle) that cannot be parsed
//     or, as root, name no object of a lower layer; union9p's own origin
//     ids (overlay.union9p.id) that cannot be parsed;
//   - metacopy files (overlay.metacopy) whose lower data is missing;
//   - mapped-xattr owners (user.virtfs.*) that cannot be parsed.
//
// It holds the servers' lock throughout and refuses layers in use, as
// fsck.overlay refuses mounted layers. The exit status follows fsck's
// convention (FsckResult.ExitCode).

// Problem is one finding.
type Problem struct {
	Path  string // in the upper layer, or "workdir:..." for the work directory
	What  string
	Fixed bool
	// Lost says what a repair could not save (metacopy data).
	Lost string
}

func (p Problem) String() string {
	s := p.Path + ": " + p.What
	if p.Fixed {
		s += " (fixed"
		if p.Lost != "" {
			s += "; " + p.Lost
		}
		s += ")"
	}
	return s
}

// FsckResult is what Fsck found, sorted by path.
type FsckResult struct {
	Problems []Problem
}

// ExitCode is fsck's: 0 clean, 1 every problem fixed, 4 problems left
// uncorrected.
func (r FsckResult) ExitCode() int {
	code := 0
	for _, p := range r.Problems {
		if !p.Fixed {
			return 4
		}
		code = 1
	}
	return code
}

// FsckOptions tune Fsck.
type FsckOptions struct {
	Repair bool // -y; otherwise -n (report only, change nothing)
}

// Fsck checks (and with Repair repairs) the layers l.
func Fsck(l Layers, opts FsckOptions) (FsckResult, error) {
	if err := checkApart(l.roles()); err != nil {
		return FsckResult{}, err
	}
	lk, err := lockForWriting(l)
	if err != nil {
		return FsckResult{}, err
	}
	defer lk.release()
	s, err := openStack(l, true)
	if err != nil {
		return FsckResult{}, err
	}
	defer s.close()
	f := &fsck{s: s, repair: opts.Repair}
	if l.Workdir != "" {
		if err := f.workdir(l.Workdir); err != nil {
			return f.result(), err
		}
	}
	lowerRoot, err := rootView(s.lowers)
	if err != nil {
		return f.result(), err
	}
	defer lowerRoot.close()
	f.lowerRoot = lowerRoot
	if err := f.dir("/", s.upper.fd, lowerRoot); err != nil {
		return f.result(), err
	}
	return f.result(), nil
}

type fsck struct {
	s         *stack
	repair    bool
	lowerRoot *view
	// below is the lowers' view of the directory whose entry xattrs
	// checks: a renamed ancestor's lower directories, not its path's.
	below    *view
	problems []Problem
}

func (f *fsck) result() FsckResult {
	sort.SliceStable(f.problems, func(i, j int) bool { return f.problems[i].Path < f.problems[j].Path })
	return FsckResult{Problems: f.problems}
}

// found records a problem; fix, called only when repairing, repairs it.
func (f *fsck) found(path, what string, fix func() error) error {
	p := Problem{Path: path, What: what}
	if f.repair && fix != nil {
		if err := fix(); err != nil {
			return fmt.Errorf("%s: repair %s: %w", path, what, err)
		}
		p.Fixed = true
	}
	f.problems = append(f.problems, p)
	return nil
}

// workdir reports what an interrupted copy-up left in WORKDIR/work.
func (f *fsck) workdir(workdir string) error {
	wfd, err := openRootDir(workdir)
	if err != nil {
		return fmt.Errorf("workdir %q: %w", workdir, err)
	}
	defer unix.Close(wfd)
	work, err := openDirAt(wfd, "work")
	if err == unix.ENOENT {
		return nil
	}
	if err == unix.EACCES {
		// overlayfs leaves work/work with mode 0 (it is only ever used
		// by the kernel); let the owner list it.
		if unix.Fchmodat(wfd, "work", 0o700, 0) == nil {
			work, err = openDirAt(wfd, "work")
		}
	}
	if err != nil {
		return fmt.Errorf("workdir %q: work: %w", workdir, err)
	}
	defer unix.Close(work)
	names, err := readNames(work)
	if err != nil {
		return err
	}
	for _, n := range names {
		var st unix.Stat_t
		if lstatAt(work, n, &st) == nil && isDeviceWhiteout(&st) {
			// overlayfs (5.8 and later) keeps one whiteout there to link
			// new whiteouts to; it leaves it at unmount and clears work/
			// at mount. Not a fault.
			continue
		}
		if err := f.found("workdir:work/"+n, "leftover of an interrupted copy-up or rename", func() error {
			return removeAllAt(work, n)
		}); err != nil {
			return err
		}
	}
	return nil
}

func isDeviceWhiteout(st *unix.Stat_t) bool {
	return fileType(st) == unix.S_IFCHR && st.Rdev == 0
}

// dir checks the upper directory ufd at path p, whose lower view (for
// whiteouts) is below (nil when the lowers show no directory there).
func (f *fsck) dir(p string, ufd int, below *view) error {
	names, err := readNames(ufd)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	for _, name := range names {
		cp := joinPath(p, name)
		var st unix.Stat_t
		if err := lstatAt(ufd, name, &st); err != nil {
			return fmt.Errorf("%s: %w", cp, err)
		}
		f.below = below // relative redirects and metacopy data are found there
		if err := f.xattrs(ufd, name, cp, &st); err != nil {
			return err
		}
		if err := lstatAt(ufd, name, &st); err != nil {
			if err == unix.ENOENT {
				continue // removed by a repair
			}
			return fmt.Errorf("%s: %w", cp, err)
		}
		old, existed, err := f.s.lookup(below, name)
		if err != nil {
			return fmt.Errorf("%s: %w", cp, err)
		}
		if f.s.isWhiteout(ufd, name, &st) {
			if !existed {
				if err := f.found(cp, "whiteout over nothing (no lower layer shows the name)", func() error {
					return unix.Unlinkat(ufd, name, 0)
				}); err != nil {
					return err
				}
			}
			continue
		}
		if fileType(&st) != unix.S_IFDIR {
			continue
		}
		sub, err := openDirAt(ufd, name)
		if err != nil {
			return fmt.Errorf("%s: %w", cp, err)
		}
		var cv *view
		redirect, rerr := f.s.upperRedirect(ufd, name)
		switch {
		case f.s.isOpaque(f.s.upper, sub):
		case rerr == nil && redirect != "":
			// A renamed directory merges with the lower directory its
			// redirect names (follow.go); an invalid one is reported by
			// xattrs and merges with nothing.
			cv, err = f.s.redirectedLowers(below, redirect)
		case existed && fileType(&old.st) == unix.S_IFDIR:
			cv, err = f.s.child(below, old)
		}
		if err == nil {
			err = f.dir(cp, sub, cv)
		}
		cv.close()
		unix.Close(sub)
		if err != nil {
			return err
		}
	}
	return nil
}
