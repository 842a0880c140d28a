package main

import (
	"debug/buildinfo"
	"fmt"
	"runtime"

	"github.com/union9p/union9p/test/internal/hostenv"
)

// environment describes the machine a run was made on, in one line.
func environment(union9pBinary, benchDir string) string {
	goVersion := runtime.Version()
	if union9pBinary != "" {
		if bi, err := buildinfo.ReadFile(union9pBinary); err == nil {
			goVersion = bi.GoVersion
		}
	}
	return fmt.Sprintf("env: kernel %s; cpu %s x%d; union9p built with %s; diod %s; bench dir on %s",
		hostenv.KernelRelease(), hostenv.CPUModel(), runtime.NumCPU(), goVersion, hostenv.PackageVersion("diod"), journalNote(benchDir))
}

// fsType names the filesystem holding dir (ext4, xfs, tmpfs...).
func fsType(dir string) string { return hostenv.FSType(dir) }
