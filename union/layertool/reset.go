package layertool

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Reset empties the upper layer and the work directory, so that the union
// shows its lowers as they are: the factory reset. It takes the servers'
// lock first (and refuses while one serves the layers), and it refuses a
// work directory holding anything that neither overlayfs nor union9p puts
// there ("work", "index"), so that a mistyped --workdir loses nothing.
// Symbolic links inside the layers are removed, never followed.
func Reset(l Layers) error {
	if l.Upper == "" || l.Workdir == "" {
		return errors.New("reset needs the upper and the work directory")
	}
	if err := checkApart(l.roles()); err != nil {
		return err
	}
	lk, err := lockForWriting(l)
	if err != nil {
		return err
	}
	defer lk.release()
	work, err := openRootDir(l.Workdir)
	if err != nil {
		return fmt.Errorf("workdir %q: %w", l.Workdir, err)
	}
	defer unix.Close(work)
	names, err := readNames(work)
	if err != nil {
		return fmt.Errorf("workdir %q: %w", l.Workdir, err)
	}
	for _, n := range names {
		if n != "work" && n != "index" {
			return fmt.Errorf("workdir %q holds %q, which no union puts there: is it really a work directory? (nothing removed)", l.Workdir, n)
		}
	}
	upper, err := openRootDir(l.Upper)
	if err != nil {
		return fmt.Errorf("upperdir %q: %w", l.Upper, err)
	}
	defer unix.Close(upper)
	// The work directory first: a copy-up left there is never visible.
	for _, n := range names {
		if err := removeAllAt(work, n); err != nil {
			return fmt.Errorf("workdir %q: remove %s: %w", l.Workdir, n, err)
		}
	}
	if err := removeContents(upper); err != nil {
		return fmt.Errorf("upperdir %q: %w", l.Upper, err)
	}
	return resetRoot(upper, l)
}

// resetRoot gives the upper's root, whose attributes the merged root
// shows, the owner, mode and xattrs of the top lower's root (none of its
// own without lowers): what the union showed before any change.
func resetRoot(upper int, l Layers) error {
	names, err := listXattrs(upper, ".")
	if err != nil {
		return err
	}
	for _, x := range names {
		if err := removeXattr(upper, ".", x); err != nil && err != unix.ENODATA {
			return fmt.Errorf("upperdir %q: remove xattr %s: %w", l.Upper, x, err)
		}
	}
	if len(l.Lowers) == 0 {
		return nil
	}
	lower, err := openRootDir(l.Lowers[0])
	if err != nil {
		return err
	}
	defer unix.Close(lower)
	var st unix.Stat_t
	if err := unix.Fstat(lower, &st); err != nil {
		return err
	}
	m, err := readMeta(lower, ".", &st)
	if err != nil {
		return err
	}
	c := newCopier(nil)
	var now unix.Stat_t
	if err := unix.Fstat(upper, &now); err != nil {
		return err
	}
	return c.applyMeta(upper, ".", &m, &now)
}
