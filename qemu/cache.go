package qemu

import (
	"fmt"
	"os"
	"path/filepath"
)

// CacheEnv names the environment variable that overrides the directory in
// which downloaded kernel packages and unpacked trees are kept.
const CacheEnv = "UNION9P_CACHE"

// Cache returns the directory for downloads that outlive a run: $UNION9P_CACHE,
// else $XDG_CACHE_HOME/union9p, else ~/.cache/union9p. It creates the
// directory.
func Cache() (string, error) {
	dir := os.Getenv(CacheEnv)
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("cache directory: %w (set %s)", err, CacheEnv)
		}
		dir = filepath.Join(base, "union9p")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	return dir, nil
}
