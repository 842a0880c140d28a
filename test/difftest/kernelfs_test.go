package difftest

import (
	"io"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// kernelFS is the reference: plain system calls on a kernel overlay mount,
// each relative to a descriptor of the parent directory obtained by
// walking one component at a time with O_NOFOLLOW.
type kernelFS struct {
	root int // O_PATH descriptor of the mount point
	// held, when not nil, keeps an O_PATH descriptor of every directory
	// walked, by path, and walks start from the longest held prefix; the
	// counterpart of unionFS.held.
	held map[string]int
}

var _ fsys = (*kernelFS)(nil)

func openKernelFS(mnt string) (*kernelFS, error) {
	fd, err := unix.Open(mnt, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &kernelFS{root: fd}, nil
}

func (k *kernelFS) Close() error {
	k.Forget("")
	return unix.Close(k.root)
}

// holdDirs makes walks keep and reuse directory descriptors (see held).
func (k *kernelFS) holdDirs() { k.held = map[string]int{} }

// Forget drops the held descriptors of p and everything below it ("" is
// all).
func (k *kernelFS) Forget(p string) {
	for key, fd := range k.held {
		if p == "" || key == p || strings.HasPrefix(key, p+"/") {
			unix.Close(fd)
			delete(k.held, key)
		}
	}
}

// walkDir returns a new O_PATH descriptor of the directory at p.
func (k *kernelFS) walkDir(p string) (int, error) {
	comps := splitPath(p)
	from, start := k.root, 0
	for i := len(comps); i > 0 && k.held != nil; i-- {
		if fd, ok := k.held[strings.Join(comps[:i], "/")]; ok {
			from, start = fd, i
			break
		}
	}
	fd, err := unix.Dup(from)
	if err != nil {
		return -1, err
	}
	for i := start; i < len(comps); i++ {
		next, err := unix.Openat(fd, comps[i], unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err == unix.ELOOP {
			// A symbolic link, met by a walk that does not follow it.
			err = unix.ENOTDIR
		}
		if err != nil {
			return -1, err
		}
		fd = next
		if k.held != nil {
			if kept, err := unix.Dup(fd); err == nil {
				k.held[strings.Join(comps[:i+1], "/")] = kept
			}
		}
	}
	return fd, nil
}

// at runs fn with a descriptor of p's parent directory and p's last
// component; the root is (root, ".").
func (k *kernelFS) at(p string, fn func(dirfd int, name string) error) error {
	dir, name := splitLast(p)
	if p == "" {
		name = "."
	}
	dirfd, err := k.walkDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	return fn(dirfd, name)
}

// procAt names the entry name of dirfd for the l*xattr calls, which have
// no descriptor-relative form.
func procAt(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

func (k *kernelFS) Lstat(p string) (fileInfo, error) {
	var fi fileInfo
	err := k.at(p, func(dirfd int, name string) error {
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		fi = fileInfo{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Size: st.Size, Nlink: uint64(st.Nlink), Rdev: st.Rdev, Mtime: st.Mtim}
		return nil
	})
	return fi, err
}

// openAt opens p's last component without following it.
func (k *kernelFS) openAt(p string, flags int, mode uint32) (int, error) {
	fd := -1
	err := k.at(p, func(dirfd int, name string) error {
		var err error
		fd, err = unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
		return err
	})
	return fd, err
}

func (k *kernelFS) ReadFile(p string) ([]byte, error) {
	fd, err := k.openAt(p, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Pread(fd, buf, int64(len(out)))
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
	}
}

func (k *kernelFS) ReadDir(p string) ([]dirEntry, error) {
	fd, err := k.openAt(p, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var out []dirEntry
	buf := make([]byte, 4096)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return k.dropListedWhiteouts(fd, out), nil
		}
		out = appendDirents(out, buf[:n])
	}
}

// dropListedWhiteouts removes whiteouts from a listing. overlayfs lists a
// directory that is not merged straight from its layer, so a whiteout in
// it that hides nothing (in a lower that was once an upper, say) is
// listed as a character device that lookup then cannot find. union hides
// every marker, as the design asks; that is not a disagreement to report.
func (k *kernelFS) dropListedWhiteouts(dirfd int, ents []dirEntry) []dirEntry {
	out := ents[:0]
	for _, e := range ents {
		if e.Type == unix.DT_CHR {
			var st unix.Stat_t
			if unix.Fstatat(dirfd, e.Name, &st, unix.AT_SYMLINK_NOFOLLOW) == unix.ENOENT {
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// appendDirents parses linux_dirent64 records.
func appendDirents(out []dirEntry, b []byte) []dirEntry {
	for len(b) >= 19 {
		reclen := int(b[16]) | int(b[17])<<8
		if reclen < 19 || reclen > len(b) {
			break
		}
		name := b[19:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		out = append(out, dirEntry{Name: string(name), Type: b[18]})
		b = b[reclen:]
	}
	return out
}

func (k *kernelFS) Readlink(p string) (string, error) {
	var target string
	err := k.at(p, func(dirfd int, name string) error {
		buf := make([]byte, 4096)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return err
		}
		target = string(buf[:n])
		return nil
	})
	return target, err
}

func (k *kernelFS) ListXattr(p string) ([]string, error) {
	var names []string
	err := k.at(p, func(dirfd int, name string) error {
		var err error
		names, err = listXattrNames(func(buf []byte) (int, error) { return unix.Llistxattr(procAt(dirfd, name), buf) })
		return err
	})
	return names, err
}

func (k *kernelFS) GetXattr(p, attr string) ([]byte, error) {
	var v []byte
	err := k.at(p, func(dirfd int, name string) error {
		var err error
		v, err = readXattr(func(buf []byte) (int, error) { return unix.Lgetxattr(procAt(dirfd, name), attr, buf) })
		return err
	})
	return v, err
}

func (k *kernelFS) Create(p string, mode uint32) error {
	fd, err := k.openAt(p, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, mode)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

func (k *kernelFS) WriteAt(p string, off int64, data []byte) error {
	fd, err := k.openAt(p, unix.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	n, err := unix.Pwrite(fd, data, off)
	if err == nil && n != len(data) {
		err = io.ErrShortWrite
	}
	return err
}

func (k *kernelFS) Truncate(p string, size int64) error {
	fd, err := k.openAt(p, unix.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Ftruncate(fd, size)
}

func (k *kernelFS) Unlink(p string) error {
	return k.at(p, func(dirfd int, name string) error { return unix.Unlinkat(dirfd, name, 0) })
}

func (k *kernelFS) Rmdir(p string) error {
	return k.at(p, func(dirfd int, name string) error { return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR) })
}

func (k *kernelFS) Mkdir(p string, mode uint32) error {
	return k.at(p, func(dirfd int, name string) error { return unix.Mkdirat(dirfd, name, mode) })
}

func (k *kernelFS) Rename(oldp, newp string) error {
	return k.at(oldp, func(olddir int, oldname string) error {
		return k.at(newp, func(newdir int, newname string) error {
			return unix.Renameat(olddir, oldname, newdir, newname)
		})
	})
}

func (k *kernelFS) Symlink(target, p string) error {
	return k.at(p, func(dirfd int, name string) error { return unix.Symlinkat(target, dirfd, name) })
}

func (k *kernelFS) Link(oldp, newp string) error {
	return k.at(oldp, func(olddir int, oldname string) error {
		return k.at(newp, func(newdir int, newname string) error {
			return unix.Linkat(olddir, oldname, newdir, newname, 0)
		})
	})
}

func (k *kernelFS) Chmod(p string, mode uint32) error {
	return k.at(p, func(dirfd int, name string) error { return unix.Fchmodat(dirfd, name, mode, 0) })
}

func (k *kernelFS) SetXattr(p, attr string, value []byte, flags int) error {
	return k.at(p, func(dirfd int, name string) error { return unix.Lsetxattr(procAt(dirfd, name), attr, value, flags) })
}

func (k *kernelFS) RemoveXattr(p, attr string) error {
	return k.at(p, func(dirfd int, name string) error { return unix.Lremovexattr(procAt(dirfd, name), attr) })
}
