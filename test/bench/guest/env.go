package main

import (
	"debug/buildinfo"
	"fmt"
	"runtime"

	"github.com/union9p/union9p/test/internal/hostenv"
)

// environment describes the host, the emulated machine and the guest in
// one line. guestKernel comes from the guest's report.
func environment(cfg config, union9pBinary, dir, guestKernel string) string {
	goVersion := "?"
	if bi, err := buildinfo.ReadFile(union9pBinary); err == nil {
		goVersion = bi.GoVersion
	}
	if guestKernel == "" {
		guestKernel = "?"
	}
	return fmt.Sprintf("env: host kernel %s; cpu %s x%d; qemu-system-x86 %s, TCG (software emulation), %d vCPU, %d MiB; "+
		"guest kernel %s; union9p built with %s; host dirs on %s",
		hostenv.KernelRelease(), hostenv.CPUModel(), runtime.NumCPU(), hostenv.PackageVersion("qemu-system-x86"), cfg.CPUs, cfg.MemoryMB,
		guestKernel, goVersion, hostenv.FSType(dir))
}
