// Package whiteout reads and writes the on-disk markers of a union's layers:
// whiteouts (a name deleted from the union), opaque directories (a directory
// that hides everything below it), and the overlay-private extended
// attributes that carry them.
//
// Three formats exist and all are read, in any layer:
//
//   - overlayfs device whiteouts: a character device 0/0 named like the
//     deleted entry. Written when the server may mknod (root).
//   - overlayfs xattr markers in the "trusted.overlay." namespace, or in
//     "user.overlay." for unprivileged servers (overlayfs's userxattr
//     option): "opaque"="y" on a directory; an empty regular file carrying
//     "whiteout" is a whiteout (Linux 6.7), and its directory carries
//     "opaque"="x" so that readers know to look for such files.
//   - OCI image-layer markers: a file ".wh.NAME" hides NAME from the layers
//     below, and ".wh..wh..opq" makes its directory opaque. Read only, so
//     an unpacked image layer works as a lower layer as it is.
//
// Every function works on a directory file descriptor and a single name
// component and never follows a symbolic link on the host.
package whiteout

import (
	"bytes"
	"errors"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Namespace is the xattr prefix under which overlay markers are stored.
type Namespace string

const (
	// Trusted is overlayfs's default namespace; reading and writing it
	// needs CAP_SYS_ADMIN.
	Trusted Namespace = "trusted.overlay."
	// User is overlayfs's "userxattr" namespace for unprivileged mounts.
	User Namespace = "user.overlay."
)

// Marker xattr names, relative to a Namespace.
const (
	opaqueName   = "opaque"
	whiteoutName = "whiteout"
)

// Values of the opaque xattr.
const (
	opaqueYes            = "y" // the directory hides the layers below
	opaqueHasXattrWhites = "x" // not opaque, but holds xattr whiteouts
)

// OCI image-layer marker names.
const (
	OCIPrefix = ".wh."
	OCIOpaque = ".wh..wh..opq"
)

// Format says how a writable layer records whiteouts.
type Format int

const (
	// DeviceWhiteouts writes character devices 0/0 (overlayfs's native
	// format; needs CAP_MKNOD).
	DeviceWhiteouts Format = iota
	// XattrWhiteouts writes empty files marked with the whiteout xattr,
	// for servers that may not mknod.
	XattrWhiteouts
)

// IsPrivateXattr reports whether an extended attribute name belongs to the
// union's own bookkeeping (overlay markers in either namespace). Such names
// are never listed to clients, and clients may never set or remove them.
func IsPrivateXattr(name string) bool {
	return strings.HasPrefix(name, string(Trusted)) || strings.HasPrefix(name, string(User))
}

// IsDeviceWhiteout reports whether st describes a 0/0 character device.
func IsDeviceWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// IsWhiteout reports whether the entry name in the directory dirfd, whose
// lstat is st, is a whiteout: a 0/0 device, or an empty file marked in
// namespace ns. OCI whiteouts mark a different name (HasOCIWhiteout). An
// xattr whiteout costs an xattr read; callers that list many entries first
// ask DirState whether the directory holds any.
func IsWhiteout(dirfd int, name string, st *unix.Stat_t, ns Namespace) bool {
	if IsDeviceWhiteout(st) {
		return true
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != 0 {
		return false
	}
	_, err := getAt(dirfd, name, string(ns)+whiteoutName)
	return err == nil
}

// DirState is what a directory's own markers say about it.
type DirState struct {
	Opaque           bool // hides all layers below
	HasXattrWhiteout bool // may contain xattr whiteouts
}

// ReadDirState reads the overlay markers of the directory open at fd (any
// kind of descriptor, O_PATH included). OCI markers are not read here: they
// mean something only in lower layers (see IsOCIOpaque).
func ReadDirState(fd int, ns Namespace) DirState {
	var s DirState
	if v, err := getFd(fd, string(ns)+opaqueName); err == nil {
		switch string(bytes.TrimRight(v, "\x00")) {
		case opaqueYes:
			s.Opaque = true
		case opaqueHasXattrWhites:
			s.HasXattrWhiteout = true
		}
	}
	return s
}

// IsOCIOpaque reports whether the directory open at fd holds an OCI layer's
// opaque marker. Only lower layers are read this way: in the upper layer a
// file of that name is a client's file like any other.
func IsOCIOpaque(fd int) bool {
	var st unix.Stat_t
	return unix.Fstatat(fd, OCIOpaque, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// HasOCIWhiteout reports whether the directory dirfd holds ".wh.NAME",
// which hides name in the layers below that directory.
func HasOCIWhiteout(dirfd int, name string) bool {
	if len(name)+len(OCIPrefix) > 255 {
		return false
	}
	var st unix.Stat_t
	return unix.Fstatat(dirfd, OCIPrefix+name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// IsOCIMarker reports whether name is an OCI marker file rather than an
// entry of the union. If it whites out another name, that name is returned.
func IsOCIMarker(name string) (hidden string, isMarker bool) {
	if !strings.HasPrefix(name, OCIPrefix) {
		return "", false
	}
	if name == OCIOpaque {
		return "", true
	}
	return name[len(OCIPrefix):], true
}

// SetOpaque marks the directory open at fd as opaque.
func SetOpaque(fd int, ns Namespace) error {
	return setFd(fd, string(ns)+opaqueName, []byte(opaqueYes))
}

// Make creates a whiteout named name in the directory dirfd, in format f.
// The name must not exist yet. A whiteout made in one directory and renamed
// into another needs NoteWhiteout on the destination.
func Make(dirfd int, name string, f Format, ns Namespace) error {
	switch f {
	case DeviceWhiteouts:
		return unix.Mknodat(dirfd, name, unix.S_IFCHR, 0) // device 0/0
	case XattrWhiteouts:
		// Mode 0600: user.* xattrs need write permission on the inode.
		fd, err := unix.Openat(dirfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Fsetxattr(fd, string(ns)+whiteoutName, nil, 0); err != nil {
			unix.Unlinkat(dirfd, name, 0)
			return err
		}
		return nil
	}
	return errors.New("whiteout: unknown format " + strconv.Itoa(int(f)))
}

// NoteWhiteout records on the directory dirfd that it holds a whiteout of
// format f, so that readers know to look for xattr whiteouts in it.
func NoteWhiteout(dirfd int, f Format, ns Namespace) error {
	if f != XattrWhiteouts || ReadDirState(dirfd, ns).Opaque {
		return nil
	}
	return setFd(dirfd, string(ns)+opaqueName, []byte(opaqueHasXattrWhites))
}

// procPath names the object behind fd in a way that works for O_PATH
// descriptors, on which f*xattr calls fail with EBADF.
func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

func getFd(fd int, attr string) ([]byte, error) {
	return getPath(procPath(fd), attr, unix.Getxattr)
}

func getAt(dirfd int, name, attr string) ([]byte, error) {
	return getPath(procPath(dirfd)+"/"+name, attr, unix.Lgetxattr)
}

func getPath(path, attr string, get func(string, string, []byte) (int, error)) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := get(path, attr, buf)
		if err == unix.ERANGE {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func setFd(fd int, attr string, v []byte) error {
	return unix.Setxattr(procPath(fd), attr, v, 0)
}
