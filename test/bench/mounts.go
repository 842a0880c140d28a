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
// XFS with reflink (mkfs.xfs from xfsprogs), attaches it to a free loop
// device and mounts it at dir/mnt. Unmounting and detaching the loop
// device are registered in cl. It returns the mount point.
func mountReflinkXFS(ctx context.Context, cl *cleanups, dir string, size int64) (string, error) {
	if _, err := exec.LookPath("mkfs.xfs"); err != nil {
		return "", fmt.Errorf("mkfs.xfs not found (apt-get install xfsprogs): %w", err)
	}
	img := filepath.Join(dir, "xfs.img")
	f, err := os.Create(img)
	if err != nil {
		return "", err
	}
	err = f.Truncate(size)
	f.Close()
	if err != nil {
		return "", err
	}
	if out, err := exec.CommandContext(ctx, "mkfs.xfs", "-q", "-f", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		return "", fmt.Errorf("mkfs.xfs: %v: %s", err, strings.TrimSpace(string(out)))
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
	if err := unix.Mount(dev, mnt, "xfs", 0, ""); err != nil {
		return "", fmt.Errorf("mount %s %s: %w", dev, mnt, err)
	}
	cl.add("unmount "+mnt, func() error { return unmount(mnt) })
	return mnt, nil
}
