package main

import (
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

// Names the guest program is told (see inguest's -port and -tag).
const (
	unionName = "bench"                   // `union9p qemu --name`
	unionPort = qemu.PortPrefix + "bench" // the virtio-serial port it becomes
	virtfsTag = "ref"                     // QEMU's mount_tag
)

// shares are the host directories of one run: the union's layers and the
// directory QEMU exports, each holding the content under treeDir.
type shares struct {
	Lower, Upper, Work string // union9p: the content, an empty upper
	Plain              string // QEMU's virtfs: the same content
}

// treeDir is the content's directory in the lower and in Plain.
const treeDir = "tree"

// newShares makes the directories under dir and writes t into the lower
// and into the plain directory.
func newShares(dir string, t tree) (*shares, error) {
	s := &shares{
		Lower: filepath.Join(dir, "lower"),
		Upper: filepath.Join(dir, "upper"),
		Work:  filepath.Join(dir, "work"),
		Plain: filepath.Join(dir, "plain"),
	}
	for _, d := range []string{s.Lower, s.Upper, s.Work, s.Plain} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{s.Lower, s.Plain} {
		if err := t.WriteDir(filepath.Join(d, treeDir)); err != nil {
			return nil, fmt.Errorf("write the tree into %s: %w", d, err)
		}
	}
	syscall.Sync() // no host writeback of the content during the run
	return s, nil
}

// virtfsArgs exports dir with QEMU's own 9p server as tag, with the
// host's owners and modes as they are (passthrough; QEMU runs as root).
func virtfsArgs(dir, tag string) []string {
	return []string{"-virtfs", fmt.Sprintf("local,path=%s,mount_tag=%s,security_model=passthrough,id=%s",
		strings.ReplaceAll(dir, ",", ",,"), tag, tag)}
}

// boot runs the guest once under `union9p qemu`, which serves the union
// on the virtio-serial port unionPort for as long as QEMU runs; the
// console (and the servers' stderr) goes to console. It returns when the
// guest has powered off. When ctx ends, union9p qemu gets SIGTERM and
// passes it on to QEMU; if this process dies, the kernel sends union9p
// qemu SIGTERM (Pdeathsig), so that no QEMU or server outlives the run.
func boot(ctx context.Context, union9p string, vm qemu.Machine, sh *shares, console io.Writer) error {
	vm.Extra = append(vm.Extra, virtfsArgs(sh.Plain, virtfsTag)...)
	args := append([]string{"qemu", "--name", unionName,
		"--lower", sh.Lower, "--upper", sh.Upper, "--workdir", sh.Work, "--"}, vm.Args()...)
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
