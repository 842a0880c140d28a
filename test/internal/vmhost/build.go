package vmhost

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
