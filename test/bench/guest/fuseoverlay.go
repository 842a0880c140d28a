package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// mountFuseOverlayfs mounts fuse-overlayfs over sh.Lower with an upper
// of its own on sh.FuseMnt, for the fuse-overlayfs side, and returns the
// function that unmounts it. fuse-overlayfs stays in the background
// until the unmount.
func mountFuseOverlayfs(ctx context.Context, sh *shares) (func(), error) {
	dir := filepath.Dir(sh.Lower)
	sh.FuseMnt = filepath.Join(dir, "fusemnt")
	up, work := filepath.Join(dir, "fuseupper"), filepath.Join(dir, "fusework")
	for _, d := range []string{sh.FuseMnt, up, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", sh.Lower, up, work)
	out, err := exec.CommandContext(ctx, "fuse-overlayfs", "-o", opts, sh.FuseMnt).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("fuse-overlayfs -o %s %s: %v: %s", opts, sh.FuseMnt, err, out)
	}
	return func() {
		for range 50 {
			if err := unix.Unmount(sh.FuseMnt, 0); err == nil || err == unix.EINVAL {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		unix.Unmount(sh.FuseMnt, unix.MNT_DETACH)
	}, nil
}
