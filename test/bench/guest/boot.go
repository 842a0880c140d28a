package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/union9p/union9p/qemu"
)

var _ = qemu.PortPrefix

// Names the guest program is told (see inguest's -union, -splice-union,
// -tag and -lower-file).
const (
	unionName  = "bench"  // `union9p qemu --name`
	spliceName = "splice" // a second union over the same lower: its own port for the splice relay
	virtfsName = "vfs"    // a third union over the same lower, on the virtfs transport (--virtfs)
	vioName    = "vio"    // a fourth, on the virtiofs transport (--virtiofs)
	virtfsTag  = "ref"    // QEMU's mount_tag; ref, refloose and reflower export the same directory
	lowerFile  = "big"    // in the content's root: read by lowerread
)

// shares are the host directories of one run: the union's layers and the
// directory QEMU exports, each holding the content under treeDir.
type shares struct {
	Lower, Upper, Work string // union9p: the content, an empty upper
	Upper2, Work2      string // the splice union's upper
	Upper3, Work3      string // the virtfs union's upper
	Upper4, Work4      string // the virtiofs union's upper
	Plain              string // QEMU's virtfs: the same content
	FuseMnt            string // fuse-overlayfs of Lower, exported by QEMU (set when mounted)
}

// treeDir is the content's directory in the lower and in Plain.
const treeDir = "tree"

// newShares makes the directories under dir and writes t into the lower
// and into the plain directory.
func newShares(dir string, t tree, bigMiB int) (*shares, error) {
	s := &shares{
		Lower:  filepath.Join(dir, "lower"),
		Upper:  filepath.Join(dir, "upper"),
		Work:   filepath.Join(dir, "work"),
		Upper2: filepath.Join(dir, "upper2"),
		Work2:  filepath.Join(dir, "work2"),
		Upper3: filepath.Join(dir, "upper3"),
		Work3:  filepath.Join(dir, "work3"),
		Upper4: filepath.Join(dir, "upper4"),
		Work4:  filepath.Join(dir, "work4"),
		Plain:  filepath.Join(dir, "plain"),
	}
	for _, d := range []string{s.Lower, s.Upper, s.Work, s.Upper2, s.Work2, s.Upper3, s.Work3, s.Upper4, s.Work4, s.Plain} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{s.Lower, s.Plain} {
		if err := t.WriteDir(filepath.Join(d, treeDir)); err != nil {
			return nil, fmt.Errorf("write the tree into %s: %w", d, err)
		}
		if err := writeBig(filepath.Join(d, lowerFile), bigMiB); err != nil {
			return nil, err
		}
	}
	syscall.Sync() // no host writeback of the content during the run
	return s, nil
}

// writeBig writes a file of mib MiB of non-zero data.
func writeBig(path string, mib int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	chunk := bytes.Repeat([]byte("union9p lowerread "), 1<<20/18+1)[:1<<20]
	for range mib {
		if _, err := f.Write(chunk); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// virtfsArgs exports dir with QEMU's own 9p server as tag, with the
// host's owners and modes as they are (passthrough; QEMU runs as root).
// A virtio-9p export takes one mount at a time, so each side that mounts
// the directory gets an export of its own.
func virtfsArgs(dir, tag string, readOnly bool) []string {
	ro := ""
	if readOnly {
		ro = ",readonly=on"
	}
	return []string{"-virtfs", fmt.Sprintf("local,path=%s,mount_tag=%s,security_model=passthrough,id=%s%s",
		strings.ReplaceAll(dir, ",", ",,"), tag, tag, ro)}
}

// boot runs the guest once under `union9p qemu --transport tcp,serial`,
// which serves the union (and the splice union) for as long as QEMU runs; the
// console (and the servers' stderr) goes to console. It returns when the
// guest has powered off. When ctx ends, union9p qemu gets SIGTERM and
// passes it on to QEMU; if this process dies, the kernel sends union9p
// qemu SIGTERM (Pdeathsig), so that no QEMU or server outlives the run.
func boot(ctx context.Context, net, union9p string, vm qemu.Machine, sh *shares, console io.Writer) error {
	vm.Extra = append(vm.Extra, virtfsArgs(sh.Plain, virtfsTag, false)...)
	vm.Extra = append(vm.Extra, virtfsArgs(sh.Plain, virtfsTag+"loose", false)...)
	vm.Extra = append(vm.Extra, virtfsArgs(sh.Plain, virtfsTag+"lower", true)...)
	if sh.FuseMnt != "" {
		vm.Extra = append(vm.Extra, virtfsArgs(sh.FuseMnt, virtfsTag+"fuse", false)...)
	}
	args := append([]string{"qemu", "--transport", net + ",serial", "--name", unionName,
		"--lower", sh.Lower, "--upper", sh.Upper, "--workdir", sh.Work,
		"--next", "--name", spliceName,
		"--lower", sh.Lower, "--upper", sh.Upper2, "--workdir", sh.Work2,
		"--next", "--name", virtfsName, "--virtfs",
		"--lower", sh.Lower, "--upper", sh.Upper3, "--workdir", sh.Work3,
		"--next", "--name", vioName, "--virtiofs",
		"--lower", sh.Lower, "--upper", sh.Upper4, "--workdir", sh.Work4, "--"}, vm.Args()...)
	cmd := exec.CommandContext(ctx, union9p, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.Stdout, cmd.Stderr = console, console
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("guest stopped: %w", context.Cause(ctx))
		}
		return fmt.Errorf("union9p qemu: %w", err)
	}
	return nil
}
