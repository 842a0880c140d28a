package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOverlay mounts the kernel's overlayfs with one lower at mnt and
// returns the function that unmounts it (also registered in cl).
func mountOverlay(cl *cleanups, lower, upper, work, mnt string) (func() error, error) {
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		return nil, fmt.Errorf("mount -t overlay -o %s %s: %w", opts, mnt, err)
	}
	return cl.add("unmount "+mnt, func() error { return unmount(mnt) }), nil
}

// unmount unmounts mnt, lazily if it is busy.
func unmount(mnt string) error {
	err := unix.Unmount(mnt, 0)
	if err == unix.EBUSY {
		err = unix.Unmount(mnt, unix.MNT_DETACH)
	}
	if err != nil && err != unix.EINVAL { // EINVAL: not mounted (any more)
		return fmt.Errorf("umount %s: %w", mnt, err)
	}
	return nil
}

// mountReflinkXFS makes a sparse image of size bytes in dir, formats it as
// XFS with reflink (mkfs.xfs from xfsprogs) and mounts it; see mountImage.
func mountReflinkXFS(ctx context.Context, cl *cleanups, dir string, size int64) (string, error) {
	return mountImage(ctx, cl, dir, size, "xfs", "mkfs.xfs", "xfsprogs", "-q", "-f", "-m", "reflink=1")
}

// mountJournaledExt4 makes a sparse image of size bytes in dir, formats it
// as ext4 with mke2fs's defaults (a journal, as on any installed system),
// its inode tables and journal written now rather than by a kernel thread
// in the background while the bench measures, and mounts it; see
// mountImage.
func mountJournaledExt4(ctx context.Context, cl *cleanups, dir string, size int64) (string, error) {
	return mountImage(ctx, cl, dir, size, "ext4", "mkfs.ext4", "e2fsprogs", "-q", "-F",
		"-E", "lazy_itable_init=0,lazy_journal_init=0")
}

// mountImage makes a sparse image of size bytes in dir, formats it with
// mkfs (from Debian package pkg) and mkfsArgs, attaches it to a free loop
// device and mounts it as fstype at dir/mnt. Unmounting and detaching the
// loop device are registered in cl. It returns the mount point.
func mountImage(ctx context.Context, cl *cleanups, dir string, size int64, fstype, mkfs, pkg string, mkfsArgs ...string) (string, error) {
	if _, err := exec.LookPath(mkfs); err != nil {
		return "", fmt.Errorf("%s not found (apt-get install %s): %w", mkfs, pkg, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	img := filepath.Join(dir, fstype+".img")
	f, err := os.Create(img)
	if err != nil {
		return "", err
	}
	err = f.Truncate(size)
	f.Close()
	if err != nil {
		return "", err
	}
	if out, err := exec.CommandContext(ctx, mkfs, append(mkfsArgs, img)...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %v: %s", mkfs, err, strings.TrimSpace(string(out)))
	}
	out, err := exec.CommandContext(ctx, "losetup", "--find", "--show", img).Output()
	if err != nil {
		return "", fmt.Errorf("losetup --find --show %s: %w", img, err)
	}
	dev := strings.TrimSpace(string(out))
	cl.add("detach "+dev, func() error {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			return fmt.Errorf("losetup -d %s: %v: %s", dev, err, strings.TrimSpace(string(out)))
		}
		return nil
	})
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return "", err
	}
	if err := unix.Mount(dev, mnt, fstype, 0, ""); err != nil {
		return "", fmt.Errorf("mount %s %s: %w", dev, mnt, err)
	}
	cl.add("unmount "+mnt, func() error { return unmount(mnt) })
	return mnt, nil
}
