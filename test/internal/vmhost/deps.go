// Package vmhost holds what the host side of the VM programs (the suite in
// test/vm, the demo in test/vm/demo and the in-guest benchmark in
// test/bench/guest) share: installing the Debian packages they need,
// fetching the guest kernel, building static binaries of this module,
// finding the repository.
package vmhost

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// hostDeps maps what the suite runs on the host to the Debian package
// that provides it. apt-get and dpkg come with Debian; go runs us.
var hostDeps = []struct{ path, pkg string }{
	{"qemu-system-x86_64", "qemu-system-x86"},
	{"/bin/busybox", "busybox-static"},
	{"mkfs.ext4", "e2fsprogs"},
}

// EnsureDeps installs the missing packages with apt-get (running apt-get
// update first if the install fails on stale lists). busybox must be the
// static build: it runs in the guest, with no libraries beside it.
func EnsureDeps(ctx context.Context, logf func(string, ...any)) error {
	var missing []string
	for _, d := range hostDeps {
		if _, err := exec.LookPath(d.path); err != nil {
			missing = append(missing, d.pkg)
		}
	}
	if len(missing) == 0 && !isStatic("/bin/busybox") {
		missing = append(missing, "busybox-static")
	}
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("missing packages %s: install them (apt-get install %s)", strings.Join(missing, " "), strings.Join(missing, " "))
	}
	logf("installing %s", strings.Join(missing, " "))
	install := func() error {
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get install %s: %w\n%s", strings.Join(missing, " "), err, out)
		}
		return nil
	}
	if install() == nil {
		return nil
	}
	if out, err := exec.CommandContext(ctx, "apt-get", "update", "-q").CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update: %w\n%s", err, out)
	}
	return install()
}

// isStatic reports whether an ELF binary has no program interpreter.
func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}
