// Package hostenv describes the machine a benchmark runs on, for the
// environment line that the benchmark programs (test/bench,
// test/bench/guest) print beside their figures.
package hostenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// KernelRelease returns the running kernel's release (uname -r).
func KernelRelease() string {
	var uts unix.Utsname
	if unix.Uname(&uts) != nil {
		return "?"
	}
	return unix.ByteSliceToString(uts.Release[:])
}

// CPUModel returns the model name of the first CPU in /proc/cpuinfo.
func CPUModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// PackageVersion asks dpkg for an installed package's version.
func PackageVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg).Output()
	if err != nil || len(out) == 0 {
		return "?"
	}
	return string(out)
}

// FSType names the filesystem holding dir (ext4, xfs, tmpfs...).
func FSType(dir string) string {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return "?"
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlay"
	}
	return fmt.Sprintf("fs 0x%x", st.Type)
}
