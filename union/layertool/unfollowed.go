package layertool

import (
	"fmt"

	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// merge --in-place folds the upper into the lower object by object. Two
// kinds of upper object are not whole objects: a directory with an
// overlay.redirect (renamed with its lower parts, which live under another
// name) and a regular file marked overlay.metacopy (its data is still in
// the lower). Folding them would mean moving lower content, so merge
// --in-place refuses such an upper; diff, export, merge and vacuum follow
// them (follow.go), and fsck reads both.

// refuseUnfollowed walks the upper and fails on the first redirected
// directory or metadata-only copy, naming it and what the tool cannot do.
func (s *stack) refuseUnfollowed(tool string) error {
	if s.upper == nil {
		return nil
	}
	root, err := openDirAt(s.upper.fd, ".")
	if err != nil {
		return err
	}
	defer unix.Close(root)
	return s.refuseUnfollowedIn(tool, "", root)
}

func (s *stack) refuseUnfollowedIn(tool, dir string, fd int) error {
	names, err := readNames(fd)
	if err != nil {
		return fmt.Errorf("%s/: %w", dir, err)
	}
	for _, name := range names {
		p := dir + "/" + name
		var st unix.Stat_t
		if err := lstatAt(fd, name, &st); err != nil {
			if err == unix.ENOENT {
				continue
			}
			return fmt.Errorf("%s: %w", p, err)
		}
		switch fileType(&st) {
		case unix.S_IFDIR:
			r, err := whiteout.ReadRedirectAt(fd, name, s.ns)
			if err != nil {
				return fmt.Errorf("%s: reading %sredirect: %w", p, s.ns, err)
			}
			if r != "" {
				return fmt.Errorf("%s: a renamed directory (%sredirect %q): %s does not follow redirects yet", p, s.ns, r, tool)
			}
			cfd, err := openDirAt(fd, name)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			err = s.refuseUnfollowedIn(tool, p, cfd)
			unix.Close(cfd)
			if err != nil {
				return err
			}
		case unix.S_IFREG:
			if _, err := getXattr(fd, name, string(s.ns)+"metacopy"); err == nil {
				return fmt.Errorf("%s: a metadata-only copy (%smetacopy): %s does not read its lower data yet", p, s.ns, tool)
			} else if err != unix.ENODATA && err != unix.ENOTSUP {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	return nil
}
