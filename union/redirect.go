package union

import (
	"strings"

	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// Redirects (see the package comment and package whiteout for the format).
// The lookup below follows overlayfs's ovl_lookup (fs/overlayfs/namei.c)
// step by step, because an upper written by either must read the same
// through both:
//
//   - What is looked up in the lower layers starts as the name; a
//     redirect on a directory found on the way (in the upper layer or in a
//     lower one) replaces it, for the layers below that one: a relative
//     redirect replaces the last component, an absolute one the whole
//     path, and from then on every layer below is searched from its root
//     instead of the parent's lower directories.
//   - An absolute path is walked one component at a time from each layer's
//     root descriptor, with the same checks as a name (whiteouts,
//     non-directories and opaque directories stop the search; traps answer
//     ELOOP), so it can never leave the layers: "." and ".." are refused
//     (EACCES, as the kernel's lookup_one_len does) before any host call,
//     and each component is opened with O_NOFOLLOW below a descriptor.
//   - A malformed redirect answers EINVAL; one that names nothing merges
//     nothing (the directory shows its upper part only), as in overlayfs.
//   - The bottom layer's markers are not read: nothing lies below it.

// RedirectDir is overlayfs's redirect_dir option: whether directory renames
// write redirects.
type RedirectDir int

const (
	// RedirectOff: a directory with lower parts cannot be renamed (EXDEV,
	// and userspace mv copies). Redirects already in the layers are still
	// followed, as overlayfs does by default (redirect_always_follow).
	// The zero value.
	RedirectOff RedirectDir = iota
	// RedirectFollow: as RedirectOff (the name says it: follow, don't
	// create).
	RedirectFollow
	// RedirectOn: renames of directories with lower parts write
	// redirects.
	RedirectOn
)

// String returns the option's value as overlayfs spells it.
func (r RedirectDir) String() string {
	switch r {
	case RedirectOn:
		return "on"
	case RedirectFollow:
		return "follow"
	}
	return "off"
}

// ParseRedirectDir parses a redirect_dir= value (on, follow, off).
func ParseRedirectDir(s string) (RedirectDir, bool) {
	switch s {
	case "on":
		return RedirectOn, true
	case "follow":
		return RedirectFollow, true
	case "off":
		return RedirectOff, true
	}
	return RedirectOff, false
}

// lowerQuery is what the lower layers are searched for, for one name (as
// overlayfs's ovl_lookup_data).
type lowerQuery struct {
	// path is a name, looked up in the parent's lower directories, or an
	// absolute path ("/a/b") looked up from each layer's root.
	path string
	// wantDir: a directory was found above, so only directories merge.
	wantDir bool
	// wantData: a metadata-only copy was found above, so only a regular
	// file (its data) is looked for.
	wantData bool
	// metacopy: what the last layer searched gave is itself a
	// metadata-only copy, so the data is still to be found below.
	metacopy bool
	// stop: the layers below must not be searched.
	stop bool
}

func (q *lowerQuery) absolute() bool { return q.path[0] == '/' }

// lookupLower searches the lower layer of ld for q: ld is the parent's
// directory in that layer (relative q) or the layer root (absolute q). It
// returns an O_PATH descriptor of what it found, or -1, and updates q.
func (u *Union) lookupLower(ld lowerObj, q *lowerQuery, st *unix.Stat_t) (int, error) {
	bottom := ld.layer.idx == len(u.lowers)
	q.metacopy = false
	if !q.absolute() {
		if q.path == "." || q.path == ".." {
			return -1, unix.EACCES // (a relative redirect) as lookupComponent
		}
		if has, known := ld.names.has(ld.fd, q.path); known && !has {
			// Not in this layer: only its OCI marker could matter.
			if len(q.path)+len(whiteout.OCIPrefix) <= 255 {
				if wh, _ := ld.names.has(ld.fd, whiteout.OCIPrefix+q.path); wh {
					q.stop = true
				}
			}
			return -1, nil
		}
		return u.lookupComponent(ld.fd, q.path, "", "", true, bottom, q, st)
	}
	base, owned := ld.fd, -1
	defer func() {
		if owned >= 0 {
			unix.Close(owned)
		}
	}()
	prefix, rest := "/", q.path[1:]
	for {
		comp, after, more := strings.Cut(rest, "/")
		post := ""
		if more {
			post = "/" + after
		}
		fd, err := u.lookupComponent(base, comp, prefix, post, !more, bottom, q, st)
		if err != nil || fd < 0 || !more {
			return fd, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			unix.Close(fd)
			return -1, nil
		}
		if owned >= 0 {
			unix.Close(owned)
		}
		base, owned = fd, fd
		prefix += comp + "/"
		rest = after
	}
}

// lookupComponent looks one component of q up in the lower directory
// dirfd. prefix and post are the parts of q.path before and after it (for
// a redirect found on it); last says whether it is the last component.
func (u *Union) lookupComponent(dirfd int, comp, prefix, post string, last, bottom bool, q *lowerQuery, st *unix.Stat_t) (int, error) {
	switch {
	case comp == "." || comp == "..":
		return -1, unix.EACCES
	case len(comp) > 255:
		return -1, nil // not found, as overlayfs takes ENAMETOOLONG
	}
	switch err := lstatAt(dirfd, comp, st); {
	case err == unix.ENOENT:
		if whiteout.HasOCIWhiteout(dirfd, comp) {
			q.stop = true
		}
		return -1, nil
	case err != nil:
		return -1, err
	}
	if _, marker := whiteout.IsOCIMarker(comp); marker || u.isWhiteout(dirfd, comp, st) {
		q.stop = true
		return -1, nil
	}
	if last && q.wantData && st.Mode&unix.S_IFMT != unix.S_IFREG {
		// A metadata-only copy's data must be a regular file.
		q.stop = true
		return -1, nil
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		q.stop = true
		if q.wantDir || !last {
			return -1, nil
		}
		fd, err := openPathAt(dirfd, comp)
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			return fd, err
		}
		// A lower made from an upper may hold metadata-only copies.
		mc, err := whiteout.IsMetacopy(fd, u.ns)
		if err == nil && mc && !bottom {
			r, rerr := whiteout.ReadRedirect(fd, u.ns)
			if err = rerr; r != "" {
				q.path = prefix + r
				if r[0] == '/' {
					q.path = r
				}
			}
		}
		if err != nil {
			unix.Close(fd)
			return -1, err
		}
		q.metacopy, q.stop = mc, !mc
		return fd, nil
	}
	if u.isTrap(st) {
		return -1, unix.ELOOP
	}
	fd, err := openPathAt(dirfd, comp)
	if err != nil || bottom {
		return fd, err
	}
	if u.lowerOpaque(fd) {
		q.stop = true
		return fd, nil
	}
	r, err := whiteout.ReadRedirect(fd, u.ns)
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	if r != "" {
		if r[0] == '/' {
			q.path = r + post
			// An absolute redirect below an opaque ancestor component
			// still leads on (ovl_check_redirect).
			q.stop = false
		} else {
			q.path = prefix + r + post
		}
	}
	return fd, nil
}

// rootLowers is the stack searched by absolute paths: every lower layer's
// root, topmost first.
func (u *Union) rootLowers() []lowerObj {
	out := make([]lowerObj, len(u.lowers))
	for i, l := range u.lowers {
		out[i] = lowerObj{layer: l, fd: l.fd}
	}
	return out
}

// setRedirect records, on the upper directory sfd of src (a directory with
// lower parts, about to be renamed from oldName), where its lower parts
// are, as overlayfs's ovl_set_redirect: a rename within one directory
// writes the old name, a move to another directory the absolute path of
// the lower parts. A redirect already there is kept when it still says
// the right thing (any, within one directory; an absolute one, anywhere).
// Call with nsMu held: the ancestors' redirects read here are then those
// of the names the rename sees.
func (u *Union) setRedirect(src *Node, sfd int, oldName string, sameDir bool) error {
	cur, err := whiteout.ReadRedirect(sfd, u.ns)
	if err != nil {
		return err
	}
	if cur != "" && (sameDir || cur[0] == '/') {
		return nil
	}
	r := oldName
	if !sameDir {
		if r, err = u.absoluteRedirect(src, cur); err != nil {
			return err
		}
	}
	if len(r) > whiteout.MaxRedirect {
		return unix.EXDEV // userspace copies, as with overlayfs
	}
	return whiteout.SetRedirect(sfd, u.ns, r)
}

// absoluteRedirect builds the path of n's lower parts from the layer
// roots: the names up to the root, each replaced by its directory's
// redirect where it has one, up to the first absolute redirect (cur is
// n's own).
func (u *Union) absoluteRedirect(n *Node, cur string) (string, error) {
	var parts []string
	size := 0
	for c := n; ; {
		up, _, parent, name := c.state()
		if parent == nil {
			break
		}
		r := cur
		if c != n {
			if up >= 0 {
				var err error
				if r, err = whiteout.ReadRedirect(up, u.ns); err != nil {
					return "", err
				}
			} else {
				r = ""
			}
		}
		if r == "" {
			r = name
		}
		size += len(r) + 1
		if size > whiteout.MaxRedirect+1 {
			return "", unix.EXDEV
		}
		parts = append(parts, r)
		if r[0] == '/' {
			break
		}
		c = parent
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		if parts[i][0] != '/' {
			b.WriteByte('/')
		}
		b.WriteString(parts[i])
	}
	return b.String(), nil
}

// aliasesAncestor reports whether c's topmost lower directory (found by a
// redirect) is also the topmost lower directory of the directory p or of
// one of its ancestors: a directory shown inside itself. overlayfs keys a
// directory's inode by that object, so it cannot show such a directory
// (ESTALE); union refuses it the same way.
func (c *Node) aliasesAncestor(p *Node) bool {
	if len(c.lowers) == 0 {
		return false
	}
	var st unix.Stat_t
	if fstat(c.lowers[0].fd, &st) != nil {
		return false
	}
	mine := inodeKey{st.Dev, st.Ino}
	for a := p; a != nil; {
		_, lowers, parent, _ := a.state()
		if len(lowers) > 0 && fstat(lowers[0].fd, &st) == nil && (inodeKey{st.Dev, st.Ino}) == mine {
			return true
		}
		a = parent
	}
	return false
}
