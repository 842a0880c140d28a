package vmhost

import (
	"context"
	"fmt"
	"os/exec"

	"github.com/union9p/union9p/qemu"
)

// Kernel returns the stock Debian kernel from the cache, fetching it if
// needed. If apt's lists are missing or stale (apt-cache names no kernel,
// or the named version is gone from the mirror), it runs apt-get update
// once and tries again.
func Kernel(ctx context.Context, logf func(string, ...any)) (*qemu.Kernel, error) {
	cache, err := qemu.Cache()
	if err != nil {
		return nil, err
	}
	k, err := qemu.FetchKernel(ctx, cache, logf)
	if err == nil {
		return k, nil
	}
	logf("%v; running apt-get update", err)
	if out, uerr := exec.CommandContext(ctx, "apt-get", "update", "-q").CombinedOutput(); uerr != nil {
		return nil, fmt.Errorf("%w (and apt-get update: %v: %s)", err, uerr, out)
	}
	return qemu.FetchKernel(ctx, cache, logf)
}
