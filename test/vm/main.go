// Command vm runs union9p against a real Linux 9p client: it boots a
// Debian kernel under QEMU (software emulation) once, and in that boot
// the guest suite (test/vm/guest) checks the unions that `union9p qemu`
// serves from the host (one over trans=tcp on the guest's user network,
// the default path; one through the virtio-serial relay), a union mounted inside the
// guest with `mount -t union9p`, and the guest kernel's overlayfs over the
// same layers as the reference. After the guest powers off, the host
// checks that the lowers are unchanged (content and metadata), that the
// upper is in overlayfs's format (whiteouts, opaque dirs, owners, modes)
// and that the host kernel's overlayfs shows the same tree from the upper
// and lowers as the guest saw through union9p.
//
// Usage (as root, from the repository):
//
//	go run ./test/vm [-v] [-keep] [-timeout 10m] [-union9p BINARY]
//
// It installs what it needs when missing (apt packages qemu-system-x86 and
// busybox-static; the kernel package, fetched with apt-get download into
// $UNION9P_CACHE or ~/.cache/union9p). Each check prints its name and
// result; the run ends with "N passed, M failed" and exits 1 on any
// failure.
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
)

func main() {
	verbose := flag.Bool("v", false, "show the whole guest console")
	keep := flag.Bool("keep", false, "keep the work directory (layers, image, console log)")
	virtfs := flag.Bool("virtfs", false, "also run the suite on a union over the virtfs transport (make vmtest-virtfs; QEMU's 9p server refuses FIFOs, sockets and device nodes there)")
	virtiofs := flag.Bool("virtiofs", false, "also run the suite on a union over the virtiofs transport (make vmtest does)")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	memory := flag.Int("m", 1024, "guest memory in MiB")
	binary := flag.String("union9p", "", "use this static union9p binary instead of building ./cmd/union9p")
	flag.Parse()
	os.Exit(run(*verbose, *keep, *virtfs, *virtiofs, *timeout, *memory, *binary))
}

// tally counts the results of host-side checks and of guest lines.
type tally struct{ passed, failed int }

func (t *tally) check(name string, err error) {
	if err != nil {
		t.failed++
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	t.passed++
	fmt.Printf("PASS %s\n", name)
}

func run(verbose, keep, virtfs, virtiofs bool, timeout time.Duration, memory int, binary string) int {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	logf := func(format string, args ...any) {
		fmt.Printf("vmtest: "+format+"\n", args...)
	}
	fatal := func(err error) int {
		fmt.Printf("vmtest: %v\n", err)
		fmt.Println("0 passed, 1 failed")
		return 1
	}
	if os.Geteuid() != 0 {
		return fatal(fmt.Errorf("must run as root (whiteout device nodes, trusted.* xattrs, chown in the layers)"))
	}
	repo, err := vmhost.RepoRoot()
	if err != nil {
		return fatal(err)
	}
	dir, err := os.MkdirTemp("", "union9p-vmtest-")
	if err != nil {
		return fatal(err)
	}
	if keep {
		logf("work directory %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	if err := vmhost.EnsureDeps(ctx, logf); err != nil {
		return fatal(err)
	}
	k, union9p, err := buildImage(ctx, repo, dir, binary, logf)
	if err != nil {
		return fatal(err)
	}
	layers, err := newHostLayers(filepath.Join(dir, "layers"))
	if err != nil {
		return fatal(err)
	}
	before, err := layers.lowerManifest()
	if err != nil {
		return fatal(err)
	}
	logf("kernel %s; image built in %v", k.Release, time.Since(start).Round(time.Millisecond))

	// Boot once: union9p qemu serves the layers on union9p.host.
	vm := qemu.Machine{
		Kernel: k.Image, Initrd: filepath.Join(dir, "initrd.gz"), MemoryMB: memory,
		Extra: []string{"-drive", "file=" + filepath.Join(dir, "scratch.img") + ",if=virtio,format=raw,cache=unsafe"},
	}
	// The suite runs on "host" over 9P on the network (net: the tap
	// transport as root) and on "hostuser" through the virtio-serial
	// relay; with -virtiofs (make vmtest) also on "hostvio" over
	// virtiofs, union9p qemu's default path; with -virtfs also on "hostvfs" over the
	// virtfs transport (QEMU's virtio-9p in front of union9p's FUSE
	// frontend; the guest runs that suite when it finds the tag).
	args := []string{"qemu", "--transport", "net,serial", "--name", "host",
		"--lower", layers.top, "--lower", layers.bottom,
		"--upper", layers.upper, "--workdir", layers.work,
		"--next", "--name", "hostuser",
		"--lower", layers.top, "--lower", layers.bottom,
		"--upper", layers.upper2, "--workdir", layers.work2}
	if virtfs {
		args = append(args, "--next", "--name", "hostvfs", "--virtfs",
			"--lower", layers.top, "--lower", layers.bottom,
			"--upper", layers.upper3, "--workdir", layers.work3)
	}
	if virtiofs {
		// "hostvio": union9p as a vhost-user-fs device (the guest runs
		// that suite when it has a virtio-fs device).
		args = append(args, "--next", "--name", "hostvio", "--virtiofs",
			"--lower", layers.top, "--lower", layers.bottom,
			"--upper", layers.upper4, "--workdir", layers.work4)
	}
	args = append(append(args, "--"), vm.Args()...)
	cmd := exec.CommandContext(ctx, union9p, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 15 * time.Second
	consoleLog, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		return fatal(err)
	}
	defer consoleLog.Close()
	con := newConsole(consoleLog, verbose)
	cmd.Stdout, cmd.Stderr = con, con
	// The storm check's host client (storm.go) finds the server's socket
	// under this TMPDIR.
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	if virtiofs {
		// The virtiofs server gets fewer descriptors than big/ has
		// entries: the guest's check more-objects-than-descriptors.
		cmd.Env = append(cmd.Env, "UNION9P_VIRTIOFS_NOFILE=4096")
	}
	stormCtx, stormStop := context.WithCancel(ctx)
	waitStorm := hostStorm(stormCtx, dir)
	var waitKiller func() []int
	if virtiofs {
		waitKiller = virtiofsWorkerKiller(stormCtx, layers.upper4, logf)
	}
	bootStart := time.Now()
	runErr := cmd.Run()
	stormStop()
	con.flush()
	logf("guest ran %v", time.Since(bootStart).Round(time.Millisecond))

	var t tally
	t.passed, t.failed = con.passed, con.failed
	t.check("vm/qemu-exit", runErr)
	if !con.finished {
		t.check("vm/guest-finished", fmt.Errorf("the guest printed no summary (crash or timeout; see the console above%s)", keptHint(keep, dir)))
	}

	// Host-side checks on the layers.
	after, err := layers.lowerManifest()
	if err == nil {
		err = fixture.DiffError(fixture.Diff(before, after, "before", "after"))
	}
	t.check("host/lowers-unchanged", err)
	for _, c := range upperChecks {
		t.check("host/"+c.name, c.run(layers.upper))
	}
	hostTree, stormOps, err := waitStorm()
	if err == nil {
		logf("storm: the host client ran %d operations beside the guest's", stormOps)
		err = checkStorm(layers.upper, hostTree)
	}
	t.check("host/storm-trees-consistent", err)
	left, err := workdirLeftovers(layers.work)
	if err == nil && len(left) > 0 {
		err = fmt.Errorf("left in workdir: %s", strings.Join(left, ", "))
	}
	t.check("host/workdir-clean", err)
	if virtfs {
		left, err = workdirLeftovers(layers.work3)
		if err == nil && len(left) > 0 {
			err = fmt.Errorf("left in workdir: %s", strings.Join(left, ", "))
		}
		t.check("hostvfs/workdir-clean", err)
	}
	if virtiofs {
		left, err = workdirLeftovers(layers.work4)
		if err == nil && len(left) > 0 {
			err = fmt.Errorf("left in workdir: %s", strings.Join(left, ", "))
		}
		t.check("hostvio/workdir-clean", err)
		t.check("hostvio/workers-killed", checkWorkersKilled(waitKiller()))
	}
	guest, err := guestView(layers)
	if err == nil {
		var host []string
		if host, err = overlayView(layers, filepath.Join(dir, "overlay")); err == nil {
			err = fixture.DiffError(fixture.Diff(guest, host, "guest-saw", "host-overlayfs"))
		}
	}
	t.check("host/overlayfs-reads-upper-as-guest-saw", err)

	// Two guests against one tenant server (tenants.go).
	tdir := filepath.Join(dir, "tenants-run")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		return fatal(err)
	}
	runTenantGuests(ctx, union9p, k.Image, filepath.Join(dir, "initrd.gz"), tdir, verbose, &t)

	logf("total %v", time.Since(start).Round(time.Millisecond))
	fmt.Printf("%d passed, %d failed\n", t.passed, t.failed)
	if t.failed > 0 {
		return 1
	}
	return 0
}

func keptHint(keep bool, dir string) string {
	if keep {
		return "; log in " + filepath.Join(dir, "console.log")
	}
	return "; -v shows the whole console"
}
