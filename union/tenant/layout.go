package tenant

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// A tenant NAME lives in DIR/NAME:
//
//	DIR/NAME/upper   its upper layer
//	DIR/NAME/work    its overlayfs work directory (same filesystem as upper)
//	DIR/NAME/quota   its own quota, JSON {"bytes":N,"inodes":N}; absent
//	                 when the server's default applies
//
// Names starting with '.' are never tenants (ValidName refuses them): the
// registry uses them for its temporary entries, which a crash may leave
// behind and the next start removes:
//
//	DIR/.removing-NAME-RAND     a tenant being removed
//	DIR/NAME/.reset-RAND        an upper or work directory being emptied
//	DIR/NAME/.quota.tmp         a quota file being written
const (
	upperName    = "upper"
	workName     = "work"
	quotaName    = "quota"
	quotaTmpName = ".quota.tmp"
	removingPfx  = ".removing-"
	resetPfx     = ".reset-"
)

// openTenantDir opens DIR/NAME for reading. It may be a mount point (a
// filesystem per tenant is a way to cap its disk); it may not be a
// symbolic link or anything but a directory.
func (r *Registry) openTenantDir(name string) (int, error) {
	fd, err := unix.Openat2(r.dirfd, name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return -1, r.layoutErr(name, "", err)
	}
	return fd, nil
}

// layoutErr explains why DIR/NAME[/sub] could not be used.
func (r *Registry) layoutErr(name, sub string, err error) error {
	p := r.dir + "/" + name
	if sub != "" {
		p += "/" + sub
	}
	switch err {
	case unix.ENOENT:
		return fmt.Errorf("tenant %s: %s does not exist: %w", name, p, ErrNotFound)
	case unix.ELOOP, unix.ENOTDIR:
		// O_NOFOLLOW|O_DIRECTORY answers ENOTDIR for a link too; look
		// (only to word the message: nothing is done with the answer).
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return fmt.Errorf("tenant %s: %s is a symbolic link, not a directory; not touched", name, p)
		}
		return fmt.Errorf("tenant %s: %s is not a directory; not touched", name, p)
	case unix.EXDEV:
		return fmt.Errorf("tenant %s: %s is a mount point: its upper and work directories must be on one filesystem with %s/%s", name, p, r.dir, name)
	}
	return fmt.Errorf("tenant %s: %s: %w", name, p, err)
}

// layers are the descriptors of a tenant's directories, checked.
type layers struct {
	tenant, upper, work int
}

func (l layers) close() {
	for _, fd := range []int{l.tenant, l.upper, l.work} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// openLayers opens DIR/NAME and its upper and work directories, making
// the two if missing (a new tenant, or an add interrupted by a crash), and
// checks that they are real directories on one filesystem.
func (r *Registry) openLayers(name string) (layers, error) {
	tfd, err := r.openTenantDir(name)
	if err != nil {
		return layers{-1, -1, -1}, err
	}
	return r.layersIn(name, tfd)
}

// layersIn is openLayers in the tenant directory already open as tfd,
// which the returned layers own (closed by their close, or on error).
func (r *Registry) layersIn(name string, tfd int) (layers, error) {
	l := layers{tfd, -1, -1}
	var err error
	if err := r.makeUpper(l.tenant); err != nil {
		l.close()
		return l, r.layoutErr(name, upperName, err)
	}
	if err := unix.Mkdirat(l.tenant, workName, 0o700); err != nil && err != unix.EEXIST {
		l.close()
		return l, r.layoutErr(name, workName, err)
	}
	// Compare the filesystems first: a mount on one of them is then
	// reported as what it breaks.
	var su, sw unix.Stat_t
	if unix.Fstatat(l.tenant, upperName, &su, unix.AT_SYMLINK_NOFOLLOW) == nil &&
		unix.Fstatat(l.tenant, workName, &sw, unix.AT_SYMLINK_NOFOLLOW) == nil && su.Dev != sw.Dev {
		l.close()
		return l, fmt.Errorf("tenant %s: work directory %s/%s/work is on another filesystem than its upper %s/%s/upper", name, r.dir, name, r.dir, name)
	}
	for _, c := range []struct {
		sub string
		st  *unix.Stat_t
		fd  *int
	}{{upperName, &su, &l.upper}, {workName, &sw, &l.work}} {
		if *c.fd, err = openDirAt(l.tenant, c.sub); err != nil {
			l.close()
			return l, r.layoutErr(name, c.sub, err)
		}
		if err := unix.Fstat(*c.fd, c.st); err != nil {
			l.close()
			return l, r.layoutErr(name, c.sub, err)
		}
	}
	if su.Dev != sw.Dev {
		l.close()
		return l, fmt.Errorf("tenant %s: work directory %s/%s/work is on another filesystem than its upper %s/%s/upper", name, r.dir, name, r.dir, name)
	}
	return l, nil
}

// makeUpper makes the upper directory in the tenant directory tfd unless
// it exists. A fresh upper takes the mode and owner of the topmost lower's
// root, so that the union's root looks like the base's (overlayfs shows the
// upper's root): that is the pristine state a reset returns to.
func (r *Registry) makeUpper(tfd int) error {
	err := unix.Mkdirat(tfd, upperName, uint32(r.rootMode))
	if err == unix.EEXIST {
		return nil
	}
	if err != nil {
		return err
	}
	// mkdirat applied the umask; set the mode exactly.
	if err := unix.Fchmodat(tfd, upperName, uint32(r.rootMode), 0); err != nil {
		return err
	}
	if r.rootOwner != nil && os.Geteuid() == 0 {
		if err := unix.Fchownat(tfd, upperName, r.rootOwner[0], r.rootOwner[1], unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

// removeLeftovers removes the temporary entries that an interrupted reset
// left in the tenant directory tfd.
func removeLeftovers(tfd int) error {
	fd, err := openDirAt(tfd, ".")
	if err != nil {
		return err
	}
	names, err := readNames(fd)
	unix.Close(fd)
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.HasPrefix(n, resetPfx) || n == quotaTmpName {
			if err := removeAllAt(tfd, n); err != nil {
				return fmt.Errorf("remove leftover %s: %w", n, err)
			}
		}
	}
	return nil
}

// readQuota reads the tenant's own quota; nil when it has none.
func readQuota(tfd int) (*Quota, error) {
	fd, err := unix.Openat(tfd, quotaName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err == unix.ENOENT {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("quota file: %w", err)
	}
	f := os.NewFile(uintptr(fd), quotaName)
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, errors.New("quota file: not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("quota file: %w", err)
	}
	var q Quota
	if err := json.Unmarshal(data, &q); err != nil {
		return nil, fmt.Errorf("quota file: %w", err)
	}
	if q.Bytes < 0 || q.Inodes < 0 {
		return nil, errors.New("quota file: negative limit")
	}
	return &q, nil
}

// writeQuota stores q as the tenant's own quota (nil: remove it, so the
// default applies), atomically: a crash leaves the old or the new file.
func writeQuota(tfd int, q *Quota) error {
	if q == nil {
		if err := unix.Unlinkat(tfd, quotaName, 0); err != nil && err != unix.ENOENT {
			return err
		}
		return nil
	}
	data, _ := json.Marshal(q)
	// O_EXCL after an unlink: never write through a planted link.
	if err := unix.Unlinkat(tfd, quotaTmpName, 0); err != nil && err != unix.ENOENT {
		return err
	}
	fd, err := unix.Openat(tfd, quotaTmpName, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), quotaTmpName)
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(tfd, quotaTmpName, tfd, quotaName)
	}
	if err != nil {
		unix.Unlinkat(tfd, quotaTmpName, 0)
	}
	return err
}
