package main

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/union9p/union9p/qemu/virtfs"
	"github.com/union9p/union9p/union"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// The virtfs transport of `union9p qemu`: each union is a FUSE
// filesystem served by a `union9p qemu-virtfs` child (package
// qemu/virtfs), on a detached mount that only QEMU holds, exported to
// the guest by QEMU's own 9p server over virtio-9p (-virtfs local).

// Descriptors of the qemu-virtfs child.
const (
	virtfsDevFd   = 3 // the FUSE connection
	virtfsReadyFd = 4 // closed (after one byte) once the union is open and the sandbox applied
)

// qemuVirtfsCommand is the hidden command that serves one union over the
// FUSE connection on descriptor 3; it takes serve's layer flags.
func qemuVirtfsCommand() *cli.Command {
	return &cli.Command{
		Name:   "qemu-virtfs",
		Hidden: true,
		Usage:  "internal: serve a union over the FUSE connection on descriptor 3 (run by union9p qemu --transport virtfs)",
		Flags:  serveCommand().Flags,
		Action: runQemuVirtfs,
	}
}

func runQemuVirtfs(c *cli.Context) error {
	ready := os.NewFile(virtfsReadyFd, "ready")
	cfg, u, err := openQemuChildUnion(c, "qemu-virtfs", "virtfs")
	if err != nil {
		return err
	}
	defer u.Close()
	srv, err := virtfs.New(u, virtfsDevFd, log.New(os.Stderr, "union9p qemu-virtfs: ", 0))
	if err != nil {
		return cli.Exit("qemu-virtfs: "+err.Error(), exitFailure)
	}
	// The union and the connection are open: from here on the server
	// needs only them (see package sandbox).
	if err := confine(cfg.sandbox, cfg.layers, c.Bool("read-only"), slog.Default()); err != nil {
		return cli.Exit("qemu-virtfs: "+err.Error(), exitFailure)
	}
	ready.Write([]byte{1})
	ready.Close()
	srv.Serve()
	return nil
}

// openQemuChildUnion is the start of a union's qemu-virtfs or
// qemu-virtiofs child (command cmd, transport name transport): serve's
// flags, less what a transport served through QEMU cannot do, and the
// union, opened with the descriptor limit raised. Errors are cli exits.
func openQemuChildUnion(c *cli.Context, cmd, transport string) (serveConfig, *union.Union, error) {
	cfg, err := parseServeFlags(c)
	switch {
	case err != nil:
	case len(cfg.listen) > 0:
		err = fmt.Errorf("--listen: the %s transport serves through QEMU", transport)
	case cfg.tenants != "":
		err = fmt.Errorf("--tenants: the %s transport serves one union per QEMU", transport)
	case (cfg.squashU != nil || cfg.squashG != nil) && transport == "virtfs":
		// QEMU's 9p server chowns each new object to the guest's ids.
		err = fmt.Errorf("--squash-uid/--squash-gid are not implemented by the %s transport (use virtiofs, tap or tcp)", transport)
	}
	if err != nil {
		return cfg, nil, cli.Exit(cmd+": "+err.Error(), exitUsage)
	}
	childFileLimit(transport)
	u, err := union.Open(cfg.layers)
	if err != nil {
		return cfg, nil, cli.Exit(cmd+": "+err.Error(), exitFailure)
	}
	return cfg, u, nil
}

// virtfsServer is the qemu-virtfs child of one union and the mount QEMU
// gets. It is not restarted: a FUSE connection cannot be taken over by a
// new process, so when it ends the guest's mount fails (EIO, ENOTCONN)
// until QEMU is restarted.
type virtfsServer struct {
	name  string
	child *qemuChild
	mnt   *os.File // for QEMU; closed by the caller once QEMU has it
}

// startVirtfs mounts, starts the server of union u and waits until it is
// serving (or has failed).
func startVirtfs(u qemuUnion) (*virtfsServer, error) {
	dev, mnt, err := virtfs.Mount()
	if err != nil {
		return nil, fmt.Errorf("virtfs transport for %s: %w", u.name, err)
	}
	defer dev.Close() // the child has its own copy
	child, err := startQemuChild("qemu-virtfs", "the virtfs server of "+u.name, u.serve, dev)
	if err != nil {
		mnt.Close()
		return nil, err
	}
	return &virtfsServer{name: u.name, child: child, mnt: mnt}, nil
}

// stop closes the mount's descriptor (if still held), which ends the
// server once QEMU has closed its copy too; then SIGTERM after 5 s,
// SIGKILL after 5 more.
func (s *virtfsServer) stop() {
	if s.mnt != nil {
		s.mnt.Close()
		s.mnt = nil
	}
	s.child.stop(0, syscall.SIGTERM, syscall.SIGKILL)
}

// qemuChild is the server process of one union on the virtfs or virtiofs
// transport, which union9p qemu runs and never restarts.
type qemuChild struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the child has exited
}

// startQemuChild runs `union9p sub SERVE-FLAGS` with conn as descriptor 3
// and a ready pipe as descriptor 4, and waits (30 s at most) until the
// child has written its ready byte; what names the server in errors.
func startQemuChild(sub, what string, serve []string, conn *os.File) (*qemuChild, error) {
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyR.Close()
	cmd := exec.Command("/proc/self/exe", append([]string{sub}, serve...)...)
	cmd.Args[0] = "union9p"
	cmd.ExtraFiles = []*os.File{conn, readyW}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", what, err)
	}
	ch := &qemuChild{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(ch.exited)
	}()
	got := make(chan bool, 1)
	go func() {
		var b [1]byte
		n, _ := io.ReadFull(readyR, b[:])
		got <- n == 1
	}()
	select {
	case ok := <-got:
		if ok {
			return ch, nil
		}
	case <-time.After(30 * time.Second):
	}
	ch.stop(syscall.SIGTERM, syscall.SIGKILL)
	return nil, fmt.Errorf("%s did not start (%v)", what, cmd.ProcessState)
}

// stop gives the child 5 s to exit after each of sigs in turn (0 sends
// nothing: just wait).
func (ch *qemuChild) stop(sigs ...syscall.Signal) {
	for _, sig := range sigs {
		if sig != 0 {
			_ = ch.cmd.Process.Signal(sig)
		}
		select {
		case <-ch.exited:
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// raiseFileLimit lifts the server's descriptor limit to the kernel's
// ceiling (fs.nr_open). The host kernel keeps every object the guest
// has looked up (QEMU lists a directory with READDIRPLUS, so a listing
// of 20,000 entries is 20,000 objects) until memory pressure makes it
// forget them, and each one the union holds keeps O_PATH descriptors
// open: under the usual limit of 20,000 the VM suite's 20k-entry
// directory alone exhausted it (EMFILE for everything after). Failing
// to raise it (not root) leaves the limit as it is.
func raiseFileLimit() {
	b, err := os.ReadFile("/proc/sys/fs/nr_open")
	if err != nil {
		return
	}
	var n uint64
	if _, err := fmt.Sscan(string(b), &n); err != nil || n == 0 {
		return
	}
	var cur unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &cur) == nil && cur.Cur >= n {
		return
	}
	_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: n})
}
