package vmhost

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/union9p/union9p/qemu"
)

// GoBuild builds a static binary of a package of this module.
func GoBuild(ctx context.Context, repo, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// RepoRoot finds the module root (the directory holding go.mod) from the
// working directory up.
func RepoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod above the working directory: run from the repository")
		}
		d = parent
	}
}

// BaseInitramfs starts every guest image of the tests: busybox, the given
// kernel modules (with their dependencies, in load order) and union9p as
// /bin/union9p, which must be static. Callers add their programs and init.
func BaseInitramfs(k *qemu.Kernel, union9p string, modules ...string) (*qemu.Initramfs, error) {
	mods, err := k.Modules(modules...)
	if err != nil {
		return nil, err
	}
	r := qemu.NewInitramfs()
	if err := r.Busybox("/bin/busybox"); err != nil {
		return nil, err
	}
	r.Modules(mods)
	if !isStatic(union9p) {
		// The guest has no dynamic loader: it would fail there with a
		// bare "no such file or directory".
		return nil, fmt.Errorf("%s is dynamically linked; the guest needs a static union9p (make build, or CGO_ENABLED=0 go build ./cmd/union9p)", union9p)
	}
	if err := r.CopyFile("bin/union9p", union9p); err != nil {
		return nil, err
	}
	return r, nil
}
