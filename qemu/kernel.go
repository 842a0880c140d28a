package qemu

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// KernelMetapackage is the Debian package whose dependency names the
// current stock kernel. The cloud flavour has no 9p at all.
const KernelMetapackage = "linux-image-amd64"

// KernelPackageEnv names the environment variable that pins the kernel
// package (e.g. linux-image-6.1.0-56-amd64) instead of asking apt-cache.
const KernelPackageEnv = "UNION9P_KERNEL_PACKAGE"

// Kernel is an unpacked Debian kernel package.
type Kernel struct {
	// Package is the Debian package name, e.g. linux-image-6.1.0-56-amd64.
	Package string
	// Release is the kernel release, e.g. 6.1.0-56-amd64.
	Release string
	// Image is the path of the bootable vmlinuz.
	Image string
	// ModuleDir is lib/modules/RELEASE inside the unpacked tree.
	ModuleDir string
}

// FetchKernel returns the stock Debian kernel unpacked under cacheDir,
// downloading it with apt-get download and unpacking it with dpkg -x the
// first time. The package is $UNION9P_KERNEL_PACKAGE or the dependency of
// linux-image-amd64. logf, if not nil, reports slow steps.
func FetchKernel(ctx context.Context, cacheDir string, logf func(string, ...any)) (*Kernel, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	pkg := os.Getenv(KernelPackageEnv)
	if pkg == "" {
		var err error
		if pkg, err = currentKernelPackage(ctx); err != nil {
			return nil, err
		}
	}
	k := kernelAt(cacheDir, pkg)
	tree := filepath.Join(cacheDir, pkg)
	if _, err := os.Stat(filepath.Join(tree, ".unpacked")); err == nil {
		return k, nil
	}

	deb, err := downloadDeb(ctx, cacheDir, pkg, logf)
	if err != nil {
		return nil, err
	}
	logf("unpacking %s", filepath.Base(deb))
	tmp := tree + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, "dpkg", "-x", deb, tmp).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dpkg -x %s: %v: %s", deb, err, out)
	}
	if err := os.RemoveAll(tree); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, tree); err != nil {
		return nil, err
	}
	if _, err := os.Stat(k.Image); err != nil {
		return nil, fmt.Errorf("kernel package %s: %w", pkg, err)
	}
	if err := os.WriteFile(filepath.Join(tree, ".unpacked"), nil, 0o644); err != nil {
		return nil, err
	}
	return k, nil
}

// kernelAt describes package pkg unpacked under cacheDir/pkg.
func kernelAt(cacheDir, pkg string) *Kernel {
	release := strings.TrimPrefix(pkg, "linux-image-")
	tree := filepath.Join(cacheDir, pkg)
	return &Kernel{
		Package:   pkg,
		Release:   release,
		Image:     filepath.Join(tree, "boot", "vmlinuz-"+release),
		ModuleDir: filepath.Join(tree, "lib", "modules", release),
	}
}

// currentKernelPackage asks apt-cache which versioned package the
// metapackage depends on. The ABI number changes with security updates.
func currentKernelPackage(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", KernelMetapackage).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends %s: %w (run apt-get update, or set %s)", KernelMetapackage, err, KernelPackageEnv)
	}
	return parseKernelDepends(out)
}

// kernelPackageRE matches the generic flavour's versioned package; the
// cloud flavour has no 9p and the rt one is not what we test.
var kernelPackageRE = regexp.MustCompile(`^linux-image-[0-9][^ ]*-amd64$`)

func genericFlavour(pkg string) bool {
	return kernelPackageRE.MatchString(pkg) && !strings.HasSuffix(pkg, "-cloud-amd64") && !strings.HasSuffix(pkg, "-rt-amd64")
}

// parseKernelDepends picks the versioned kernel package out of the output
// of apt-cache depends linux-image-amd64.
func parseKernelDepends(out []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Depends:" && genericFlavour(f[1]) {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("apt-cache depends %s names no linux-image-*-amd64 package (run apt-get update, or set %s)", KernelMetapackage, KernelPackageEnv)
}

// downloadDeb returns the cached .deb of pkg, fetching it with apt-get
// download into cacheDir when absent.
func downloadDeb(ctx context.Context, cacheDir, pkg string, logf func(string, ...any)) (string, error) {
	if deb, ok := findDeb(cacheDir, pkg); ok {
		return deb, nil
	}
	logf("downloading %s", pkg)
	cmd := exec.CommandContext(ctx, "apt-get", "download", pkg)
	cmd.Dir = cacheDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download %s: %v: %s", pkg, err, out)
	}
	if deb, ok := findDeb(cacheDir, pkg); ok {
		return deb, nil
	}
	return "", fmt.Errorf("apt-get download %s left no .deb in %s", pkg, cacheDir)
}

func findDeb(dir, pkg string) (string, bool) {
	m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*_amd64.deb"))
	if len(m) == 0 {
		return "", false
	}
	return m[len(m)-1], true
}
