package main

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// environment describes the machine a run was made on, in one line.
func environment(union9pBinary, benchDir string) string {
	var uts unix.Utsname
	kernel := "?"
	if unix.Uname(&uts) == nil {
		kernel = unix.ByteSliceToString(uts.Release[:])
	}
	goVersion := runtime.Version()
	if union9pBinary != "" {
		if bi, err := buildinfo.ReadFile(union9pBinary); err == nil {
			goVersion = bi.GoVersion
		}
	}
	return fmt.Sprintf("env: kernel %s; cpu %s x%d; union9p built with %s; diod %s; bench dir on %s",
		kernel, cpuModel(), runtime.NumCPU(), goVersion, packageVersion("diod"), fsType(benchDir))
}

func cpuModel() string {
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

// packageVersion asks dpkg for an installed package's version.
func packageVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg).Output()
	if err != nil || len(out) == 0 {
		return "?"
	}
	return string(out)
}

// fsType names the filesystem holding dir (ext4, xfs, tmpfs...).
func fsType(dir string) string {
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
