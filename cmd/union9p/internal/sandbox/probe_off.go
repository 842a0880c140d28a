//go:build !sandboxprobe

package sandbox

import "log/slog"

// Probe is the confinement test's hook; production builds have none (see
// probe_on.go, built only with -tags sandboxprobe).
func Probe(*slog.Logger) {}
