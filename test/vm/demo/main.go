// Command demo boots a QEMU guest whose root file system is a union: a
// small busybox base tree as the lower layer and a fresh, empty upper. The
// guest changes a few things (writes a new file, edits a base file, deletes
// one, makes a directory, changes a mode) and powers off; the host then
// shows that every change landed in the upper and that the base tree is
// byte-for-byte and metadata-for-metadata what it was.
//
// Usage (as root, from the repository):
//
//	go run ./test/vm/demo [-keep]
//
// The guest boots from an initramfs that only loads the 9p and network
// modules, mounts the union "root" with `union9p guest-mount` over its
// default path (TCP on the guest's restricted user network, handed to
// the kernel: no process keeps running for the mount) and switches to
// it; everything after that runs from the union. It exits 1 if a change is missing from the upper or the base
// changed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/union9p/union9p/qemu"
	"github.com/union9p/union9p/test/internal/vmhost"
	"github.com/union9p/union9p/test/vm/fixture"
	"golang.org/x/sys/unix"
)

func main() {
	keep := flag.Bool("keep", false, "keep the work directory (base, upper, image)")
	tenants := flag.Bool("tenants", false, "two guests on one tenant server, one writing, then a reset (tenants.go)")
	flag.Parse()
	demo := run
	if *tenants {
		demo = runTenants
	}
	if err := demo(*keep); err != nil {
		fmt.Println("demo: FAILED:", err)
		os.Exit(1)
	}
	fmt.Println("demo: OK")
}

// stage1 is the initramfs's part: mount the union and switch to it.
const stage1 = `mkdir -p /newroot
union9p guest-mount root /newroot || { echo "demo: mounting the root union failed"; poweroff -f; }
echo "demo: root union mounted, switching to it"
umount /dev/pts /dev/shm /tmp /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init`

// baseInit is /sbin/init in the base tree: the guest's real init.
const baseInit = `#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
echo "demo: running from $(grep ' / ' /proc/mounts)"
[ -x /etc/rc.demo ] && /etc/rc.demo
sync
poweroff -f
`

// rcDemo makes the guest's changes.
const rcDemo = `#!/bin/sh
set -x
echo "written in the guest" > /root/hello.txt
echo "motd changed by the guest" > /etc/motd
rm /etc/issue
mkdir -p /opt/app && echo "setting=1" > /opt/app/config
chmod 600 /etc/hostname
ls -l /etc /root /opt/app
df -h /
`

func run(keep bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logf := func(format string, args ...any) { fmt.Printf("demo: "+format+"\n", args...) }
	s, err := setUp(ctx, keep, "union9p-demo-", logf)
	if s.dir != "" && !keep {
		defer os.RemoveAll(s.dir)
	}
	if err != nil {
		return err
	}
	dir, k, union9p, initrd := s.dir, s.kernel, s.union9p, s.initrd
	base, upper, work := filepath.Join(dir, "base"), filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	if err := buildBase(base); err != nil {
		return err
	}
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	exact := fixture.ManifestOptions{Times: true, Private: true, DirNlink: true}
	before, err := fixture.Manifest(base, exact)
	if err != nil {
		return err
	}

	vm := qemu.Machine{Kernel: k.Image, Initrd: initrd, MemoryMB: 512}
	args := append([]string{"qemu", "--name", "root", "--lower", base, "--upper", upper, "--workdir", work, "--"}, vm.Args()...)
	cmd := exec.CommandContext(ctx, union9p, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 15 * time.Second
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	logf("booting; the guest's root is the union of %s (base) and %s (upper)", base, upper)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("union9p qemu: %w", err)
	}
	logf("guest ran %v", time.Since(start).Round(time.Millisecond))

	fmt.Println()
	logf("the upper layer now holds:")
	if err := showTree(upper); err != nil {
		return err
	}
	var problems []string
	for _, c := range []struct{ path, content string }{
		{"root/hello.txt", "written in the guest\n"},
		{"etc/motd", "motd changed by the guest\n"},
		{"opt/app/config", "setting=1\n"},
	} {
		if b, err := os.ReadFile(filepath.Join(upper, c.path)); err != nil || string(b) != c.content {
			problems = append(problems, fmt.Sprintf("upper/%s: %q, %v", c.path, b, err))
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(upper, "etc/issue"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		problems = append(problems, "upper/etc/issue is no whiteout")
	}
	if err := unix.Lstat(filepath.Join(upper, "etc/hostname"), &st); err != nil || st.Mode&0o777 != 0o600 {
		problems = append(problems, "upper/etc/hostname did not get mode 0600")
	}

	after, err := fixture.Manifest(base, exact)
	if err != nil {
		return err
	}
	if diffs := fixture.Diff(before, after, "before", "after"); len(diffs) > 0 {
		for _, d := range diffs {
			fmt.Println("demo: base changed:", d)
		}
		problems = append(problems, fmt.Sprintf("%d changes in the base", len(diffs)))
	} else {
		logf("the base is unchanged: %d objects, content, modes, owners, times and xattrs as before", len(after))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// showTree prints the upper layer like ls -lR would, marking whiteouts.
func showTree(root string) error {
	return filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		note := ""
		switch {
		case st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0:
			note = "  (whiteout: deleted in the guest)"
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			note = fmt.Sprintf("  %q", strings.TrimSpace(string(b)))
		}
		fmt.Printf("  %s %s%s\n", fi.Mode(), rel, note)
		return nil
	})
}

// buildInitramfs writes the boot stage: busybox, the modules of union9p
// qemu's transports (virtiofs, the default; 9p over the network, a
// tenant's), union9p and an init that mounts the root union and switches
// to it.
func buildInitramfs(k *qemu.Kernel, union9p, out string) error {
	mods := append(append(append([]string{}, qemu.VirtiofsModules...), qemu.NinePModules...), qemu.NetModules...)
	r, err := vmhost.BaseInitramfs(k, union9p, mods...)
	if err != nil {
		return err
	}
	r.File("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	r.File("init", 0o755, []byte(qemu.InitScript(stage1)))
	return r.WriteFile(out)
}

// buildBase writes the small base tree: busybox and its applet links, an
// init, and a few files for the guest to change.
func buildBase(base string) error {
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "proc", "sys", "dev", "tmp", "opt"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(base, "root"), 0o700); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(base, "tmp"), 0o1777); err != nil {
		return err
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(base, "bin/busybox"), bb, 0o755); err != nil {
		return err
	}
	out, err := exec.Command("/bin/busybox", "--list-full").Output()
	if err != nil {
		return fmt.Errorf("busybox --list-full: %w", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "bin/busybox" {
			continue
		}
		if err := os.Symlink("/bin/busybox", filepath.Join(base, applet)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	files := []struct {
		name, content string
		mode          os.FileMode
	}{
		{"sbin/init", baseInit, 0o755},
		{"etc/rc.demo", rcDemo, 0o755},
		{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644},
		{"etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644},
		{"etc/hostname", "union9p-demo\n", 0o644},
		{"etc/motd", "base motd\n", 0o644},
		{"etc/issue", "union9p demo base\n", 0o644},
	}
	for _, f := range files {
		p := filepath.Join(base, f.name)
		os.Remove(p) // sbin/init may be an applet link
		if err := os.WriteFile(p, []byte(f.content), f.mode); err != nil {
			return err
		}
	}
	return nil
}

// demoSetup is what both demos start from: a work directory, the guest
// kernel, a union9p binary and an initramfs holding it.
type demoSetup struct {
	dir, union9p, initrd string
	kernel               *qemu.Kernel
}

// setUp checks for root, installs what the guests need and builds the
// binary and initramfs in a new directory named from prefix, which the
// caller removes unless keep.
func setUp(ctx context.Context, keep bool, prefix string, logf func(string, ...any)) (demoSetup, error) {
	var s demoSetup
	if os.Geteuid() != 0 {
		return s, fmt.Errorf("run as root (the base tree is owned by root)")
	}
	repo, err := vmhost.RepoRoot()
	if err != nil {
		return s, err
	}
	if err := vmhost.EnsureDeps(ctx, logf); err != nil {
		return s, err
	}
	if s.dir, err = os.MkdirTemp("", prefix); err != nil {
		return s, err
	}
	if keep {
		logf("work directory %s", s.dir)
	}
	if s.kernel, err = vmhost.Kernel(ctx, logf); err != nil {
		return s, err
	}
	s.union9p = filepath.Join(s.dir, "union9p")
	if err := vmhost.GoBuild(ctx, repo, "./cmd/union9p", s.union9p); err != nil {
		return s, err
	}
	s.initrd = filepath.Join(s.dir, "initrd.gz")
	return s, buildInitramfs(s.kernel, s.union9p, s.initrd)
}
