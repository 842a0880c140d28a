package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// The kernel's own metadata-only copy-up, for reference beside the chown
// section's union9p rows: the same tree chowned through an overlayfs
// mount with metacopy=on by fchownat per file (what chown -R does, with
// no 9P between), then again with the files in the upper. What the first
// pass costs over the second is what the filesystem charges for a
// metadata-only copy, whoever makes it.

// chownOverlayRound mounts overlayfs (metacopy=on) over lower with a fresh
// upper in root and times the chown of every file, then the same again;
// it returns the file data that landed in the upper (data extents). The
// caller removes root.
func chownOverlayRound(ctx context.Context, cl *cleanups, lower, root string) (first, again time.Duration, data int64, err error) {
	upper, work, mnt := filepath.Join(root, "upper"), filepath.Join(root, "work"), filepath.Join(root, "mnt")
	for _, d := range []string{upper, work, mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, 0, 0, err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=on,metacopy=on", lower, upper, work)
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		return 0, 0, 0, fmt.Errorf("mount -t overlay -o %s %s: %w", opts, mnt, err)
	}
	umount := cl.add("unmount "+mnt, func() error { return unmount(mnt) })
	defer umount()
	pass := func(id int) (time.Duration, error) {
		start := time.Now()
		for i := range chownFiles {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			if err := unix.Fchownat(unix.AT_FDCWD, filepath.Join(mnt, chownDir, fileName(i)), id, id, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	if first, err = pass(1000); err != nil {
		return 0, 0, 0, err
	}
	if again, err = pass(1001); err != nil {
		return 0, 0, 0, err
	}
	return first, again, upperExtentBytes(upper), nil
}

// upperExtentBytes sums the data extents (SEEK_DATA to SEEK_HOLE) of the
// regular files in dir. Not their blocks: the kernel's metadata-only
// copies have a 4 KiB block each, which holds their xattrs (the origin
// file handle and the marker do not fit in a 256-byte inode), no data.
func upperExtentBytes(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil
		}
		defer unix.Close(fd)
		for off := int64(0); ; {
			start, err := unix.Seek(fd, off, unix.SEEK_DATA)
			if err != nil {
				return nil // ENXIO: only holes from off on
			}
			end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
			if err != nil || end <= start {
				return nil
			}
			total += end - start
			off = end
		}
	})
	return total
}
