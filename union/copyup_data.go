package union

import (
	"golang.org/x/sys/unix"
)

// copyFileData creates the copy w in the work directory with the data of
// the lower regular file srcFd (O_PATH): a reflink where the filesystem
// can, else copy_file_range over the data extents only, so that holes stay
// holes. It returns the source, open (-1 when size is 0: nothing is read,
// and the metadata is read through srcFd), and the copy (w's, which w
// closes), for the metadata to follow. Only the first size bytes are
// copied (the copy is then that long). The copy is created with the
// permission bits perm (less the umask), so that a copy whose owner and
// mode need no change gets none (copyOwner).
//
// The copy is an O_TMPFILE where the filesystem has them, as overlayfs
// makes its copies: placing it is one link instead of a create and a
// rename between two directories, and a crash leaves nothing behind.
func (u *Union) copyFileData(srcFd int, w *workCopy, size int64, perm uint32) (src, dst int, err error) {
	src = -1
	if size > 0 {
		src, err = reopen(srcFd, unix.O_RDONLY|unix.O_NOATIME)
		if err == unix.EPERM {
			src, err = reopen(srcFd, unix.O_RDONLY)
		}
		if err != nil {
			return -1, -1, err
		}
	}
	closeSrc := func() {
		if src >= 0 {
			unix.Close(src)
		}
	}
	perm &= 0o777
	dst, err = unix.Openat(u.work, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, perm)
	w.tmpfile = err == nil
	if !w.tmpfile {
		dst, err = unix.Openat(u.work, w.name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	}
	if err != nil {
		closeSrc()
		return -1, -1, err
	}
	w.fd = dst
	if err := copyData(src, dst, size); err != nil {
		closeSrc()
		w.close()
		return -1, -1, err
	}
	return src, dst, nil
}

func copyData(src, dst int, size int64) error {
	if size == 0 || unix.IoctlFileClone(dst, src) == nil {
		return nil
	}
	if err := copyExtents(dst, src, size); err != nil {
		return err
	}
	// A trailing hole has no extent to copy: set the size explicitly.
	return unix.Ftruncate(dst, size)
}

// copyExtents copies the data extents of src to the same offsets of dst.
func copyExtents(dst, src int, size int64) error {
	off := int64(0)
	for off < size {
		start, err := unix.Seek(src, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			return nil // only a hole remains
		}
		if err != nil {
			// No SEEK_DATA support: treat the whole rest as data.
			start = off
		}
		end, err := unix.Seek(src, start, unix.SEEK_HOLE)
		if err != nil || end > size {
			end = size
		}
		if err := copyRange(dst, src, start, end-start); err != nil {
			return err
		}
		off = end
	}
	return nil
}

// copyRange copies n bytes at off from src to dst, with copy_file_range
// where the kernel can and read/write otherwise.
func copyRange(dst, src int, off, n int64) error {
	for n > 0 {
		inOff, outOff := off, off
		chunk := n
		if chunk > 1<<30 {
			chunk = 1 << 30
		}
		w, err := unix.CopyFileRange(src, &inOff, dst, &outOff, int(chunk), 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || w == 0 {
			if err == nil || err == unix.EXDEV || err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP {
				return copyRangeRW(dst, src, off, n)
			}
			return err
		}
		off += int64(w)
		n -= int64(w)
	}
	return nil
}

func copyRangeRW(dst, src int, off, n int64) error {
	buf := make([]byte, 1<<20)
	for n > 0 {
		b := buf
		if int64(len(b)) > n {
			b = b[:n]
		}
		r, err := unix.Pread(src, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if r == 0 {
			return nil // the file shrank meanwhile
		}
		if _, err := pwriteAll(dst, b[:r], off); err != nil {
			return err
		}
		off += int64(r)
		n -= int64(r)
	}
	return nil
}

func pwriteAll(fd int, b []byte, off int64) (int, error) {
	total := 0
	for len(b) > 0 {
		w, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return total, err
		}
		total += w
		b = b[w:]
		off += int64(w)
	}
	return total, nil
}
