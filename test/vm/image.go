package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/union9p/union9p/qemu"
	"github.com/union9p/union9p/test/internal/vmhost"
	"github.com/union9p/union9p/test/vm/fixture"
)

// buildInitramfs writes the guest image: busybox, the 9p and overlay
// modules of k, union9p (also as /sbin/mount.union9p, for mount -t
// union9p), the guest suite and an init that runs it.
func buildInitramfs(k *qemu.Kernel, union9p, vmguest, out string) error {
	names := append(append(append(append(append([]string{}, qemu.NinePModules...), qemu.VirtfsModules...), qemu.NetModules...), qemu.VirtiofsModules...), qemu.OverlayModules...)
	// The guest-local layers live on an ext4 disk (see scratchDisk);
	// ext4 asks the crypto API for crc32c, which no depends= names.
	names = append(names, "virtio_blk", "crc32c_generic", "ext4")
	r, err := vmhost.BaseInitramfs(k, union9p, names...)
	if err != nil {
		return err
	}
	r.Symlink("sbin/mount.union9p", "/bin/union9p")
	if err := r.CopyFile("bin/vmguest", vmguest); err != nil {
		return err
	}
	// nobody: the kernel's first Tattach names uname "nobody", which the
	// guest-local server looks up here.
	r.File("etc/passwd", 0o644, []byte(fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\nuser:x:%d:%d:user:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", fixture.UserID, fixture.UserID)))
	r.File("etc/group", 0o644, []byte(fmt.Sprintf("root:x:0:\nuser:x:%d:\nnogroup:x:65534:\n", fixture.UserID)))
	r.File("init", 0o755, []byte(qemu.InitScript("cd /tmp && /bin/vmguest")))
	return r.WriteFile(out)
}

// scratchDisk creates an empty, sparse ext4 image for the guest-local
// layers (tmpfs lacks user.* xattrs before Linux 6.6).
func scratchDisk(ctx context.Context, path string) error {
	out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1", path, "8G").CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.ext4 %s: %w\n%s", path, err, out)
	}
	return nil
}

// buildImage fetches the kernel and builds the binaries and the initramfs
// into dir. It returns the kernel and the path of the union9p binary,
// which runs on the host and in the guest: binary if given (it must be
// static), else one built from ./cmd/union9p.
func buildImage(ctx context.Context, repo, dir, binary string, logf func(string, ...any)) (*qemu.Kernel, string, error) {
	k, err := vmhost.Kernel(ctx, logf)
	if err != nil {
		return nil, "", err
	}
	union9p := binary
	if union9p == "" {
		union9p = filepath.Join(dir, "union9p")
		if err := vmhost.GoBuild(ctx, repo, "./cmd/union9p", union9p); err != nil {
			return nil, "", err
		}
	}
	vmguest := filepath.Join(dir, "vmguest")
	if err := vmhost.GoBuild(ctx, repo, "./test/vm/guest", vmguest); err != nil {
		return nil, "", err
	}
	if err := buildInitramfs(k, union9p, vmguest, filepath.Join(dir, "initrd.gz")); err != nil {
		return nil, "", err
	}
	if err := scratchDisk(ctx, filepath.Join(dir, "scratch.img")); err != nil {
		return nil, "", err
	}
	return k, union9p, nil
}
