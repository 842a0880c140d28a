package whiteout

import (
	"strings"

	"golang.org/x/sys/unix"
)

// Redirects: overlayfs renames a directory that has lower parts by storing,
// on its upper directory, where its lower parts are: the xattr "redirect"
// holds either a single name (relative: the lower directory of that name
// in the same parent) or a path from the layer roots starting with '/'
// (absolute). Lookups follow a redirect into the layers below the one that
// carries it, wherever they meet one (upper or lower layer).
//
// The value is validated as overlayfs validates it (fs/overlayfs/namei.c,
// ovl_get_redirect_xattr): an empty value, a relative value with a '/', or
// an absolute one with an empty component ("//a", "/a/", "/") is invalid
// (EINVAL). Components "." and ".." are valid here but refused where they
// are looked up (EACCES, as the kernel's lookup_one_len refuses them); the
// union checks that before any host call.

const redirectName = "redirect"

// MaxRedirect is the longest redirect overlayfs writes (its redirect_max
// default); longer ones make the rename fail with EXDEV, and userspace
// copies.
const MaxRedirect = 256

// ReadRedirect returns the redirect stored on the object open at fd (any
// kind of descriptor, O_PATH included) in namespace ns: "" with a nil
// error when there is none, EINVAL when the stored value is malformed.
func ReadRedirect(fd int, ns Namespace) (string, error) {
	return readRedirect(procPath(fd), ns, unix.Getxattr)
}

// ReadRedirectAt is ReadRedirect for the entry name of the directory
// dirfd, not following it.
func ReadRedirectAt(dirfd int, name string, ns Namespace) (string, error) {
	return readRedirect(procPath(dirfd)+"/"+name, ns, unix.Lgetxattr)
}

func readRedirect(path string, ns Namespace, get func(string, string, []byte) (int, error)) (string, error) {
	v, err := getPath(path, string(ns)+redirectName, get)
	switch err {
	case nil:
	case unix.ENODATA, unix.ENOTSUP:
		return "", nil
	default:
		return "", err
	}
	s := string(v)
	if err := ValidRedirect(s); err != nil {
		return "", err
	}
	return s, nil
}

// ValidRedirect reports whether s is a well-formed redirect (EINVAL if not).
func ValidRedirect(s string) error {
	if s == "" || strings.IndexByte(s, 0) >= 0 {
		return unix.EINVAL
	}
	if s[0] != '/' {
		if strings.IndexByte(s, '/') >= 0 {
			return unix.EINVAL
		}
		return nil
	}
	for _, c := range strings.Split(s[1:], "/") {
		if c == "" {
			return unix.EINVAL
		}
	}
	return nil
}

// SetRedirect stores redirect r on the directory open at fd.
func SetRedirect(fd int, ns Namespace, r string) error {
	if err := ValidRedirect(r); err != nil {
		return err
	}
	return setFd(fd, string(ns)+redirectName, []byte(r))
}
