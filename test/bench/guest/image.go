package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/union9p/union9p/qemu"
	"github.com/union9p/union9p/test/internal/vmhost"
)

// Paths inside the guest image.
const (
	guestProgram = "/bin/benchguest"
	guestTarball = "/tree.tar"
)

// binaries returns the union9p binary (cfg.Union9p, or one built from
// ./cmd/union9p into dir; it must be static, since it also runs in the
// guest) and the guest program built from ./test/bench/guest/inguest.
func binaries(ctx context.Context, repo, dir, union9p string) (string, string, error) {
	if union9p == "" {
		union9p = filepath.Join(dir, "union9p")
		if err := vmhost.GoBuild(ctx, repo, "./cmd/union9p", union9p); err != nil {
			return "", "", err
		}
	}
	inguest := filepath.Join(dir, "benchguest")
	if err := vmhost.GoBuild(ctx, repo, "./test/bench/guest/inguest", inguest); err != nil {
		return "", "", err
	}
	return union9p, inguest, nil
}

// buildInitramfs writes the guest image to out: busybox, the modules for
// 9p over virtio-serial (trans=fd), over virtio-net (trans=tcp) and over
// virtio (QEMU's virtfs), overlayfs,
// union9p for guest-mount, the guest program, the tarball, and an init
// that runs the guest program with args and powers off.
func buildInitramfs(k *qemu.Kernel, union9p, inguest string, tarball []byte, args, out string) error {
	var mods []string
	for _, m := range [][]string{qemu.NinePModules, qemu.VirtfsModules, qemu.NetModules, qemu.OverlayModules, qemu.VirtiofsModules} {
		mods = append(mods, m...)
	}
	r, err := vmhost.BaseInitramfs(k, union9p, mods...)
	if err != nil {
		return err
	}
	if err := r.CopyFile(guestProgram, inguest); err != nil {
		return err
	}
	r.File(guestTarball, 0o644, tarball)
	// tar resolves the archive's owner names; 9p's first attach names
	// "nobody".
	r.File("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	r.File("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))
	r.File("init", 0o755, []byte(qemu.InitScript(fmt.Sprintf("cd /tmp && %s %s", guestProgram, args))))
	return r.WriteFile(out)
}
