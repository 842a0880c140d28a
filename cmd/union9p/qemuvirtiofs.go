package main

import (
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/union9p/union9p/qemu"
	"github.com/union9p/union9p/qemu/vhostuser"
	"github.com/union9p/union9p/qemu/virtfs"
	"github.com/union9p/union9p/union"
	"github.com/urfave/cli/v2"
)

// The virtiofs transport of `union9p qemu`: each union is a vhost-user-fs
// device. The guest mounts `-t virtiofs union9p.NAME DIR`; neither root
// nor the host kernel's FUSE is needed, and every request (mknod and
// mkfifo included) is the union's to answer.
//
// Two processes per union, so that the device outlives the process that
// serves the union (QEMU cannot reconnect a vhost-user-fs back end):
//   - `union9p qemu-virtiofs` (started by union9p qemu) is the device
//     keeper (package qemu/vhostuser's Keeper): QEMU connects to its
//     socket and it keeps what QEMU sets up. It parses QEMU's messages
//     only, never guest data.
//   - `union9p qemu-virtiofs-worker` (started by the keeper, again after
//     each death with union9p qemu's backoff: 1 s doubling to 30 s) opens
//     the union, maps the guest's RAM and answers the FUSE requests
//     (qemu/virtfs's Protocol behind its Session).
// A new worker has no FUSE session: see virtfs.Session for what the
// guest sees and how it gets one (it mounts again).

// Descriptors of the qemu-virtiofs keeper and of its workers.
const (
	virtiofsListenFd = 3 // keeper: the listening unix socket QEMU connects to
	virtiofsWorkerFd = 3 // worker: its end of the socketpair to the keeper
	virtiofsReadyFd  = 4 // both: closed (after one byte) once serving
)

// virtiofsRequestQueues is how many request queues the device accepts
// (QEMU's num-request-queues, 1 by default), besides the hiprio queue.
const virtiofsRequestQueues = 8

// qemuVirtiofsCommand is the hidden command that keeps one union's
// vhost-user-fs device on the listening socket on descriptor 3; it takes
// serve's layer flags, for its workers.
func qemuVirtiofsCommand() *cli.Command {
	return &cli.Command{
		Name:   "qemu-virtiofs",
		Hidden: true,
		Usage:  "internal: keep a union's vhost-user-fs device on the socket listening on descriptor 3, served by qemu-virtiofs-worker children (run by union9p qemu --transport virtiofs)",
		Flags:  serveCommand().Flags,
		Action: runQemuVirtiofs,
	}
}

// qemuVirtiofsWorkerCommand is the hidden command that serves one union's
// vhost-user-fs device for its keeper, on descriptor 3.
func qemuVirtiofsWorkerCommand() *cli.Command {
	return &cli.Command{
		Name:   "qemu-virtiofs-worker",
		Hidden: true,
		Usage:  "internal: serve a union's vhost-user-fs device for the qemu-virtiofs keeper on descriptor 3",
		Flags:  serveCommand().Flags,
		Action: runQemuVirtiofsWorker,
	}
}

// virtiofsKeeper returns the keeper of a union whose workers get the
// serve flags args.
func virtiofsKeeper(args []string, logger *log.Logger) *vhostuser.Keeper {
	return vhostuser.NewKeeper(vhostuser.KeeperConfig{
		Queues: 1 + virtiofsRequestQueues,
		Logger: logger,
		Start: func(sock *os.File) (*vhostuser.Worker, error) {
			ch, err := startQemuChild("qemu-virtiofs-worker", "the virtiofs worker", args, sock)
			if err != nil {
				return nil, err
			}
			return &vhostuser.Worker{Kill: func() { _ = ch.cmd.Process.Kill() }, Exited: ch.exited}, nil
		},
	})
}

func runQemuVirtiofs(c *cli.Context) error {
	ready := os.NewFile(virtiofsReadyFd, "ready")
	logger := log.New(os.Stderr, "union9p qemu-virtiofs: ", 0)
	// The serve flags as given, for the workers (which check them).
	args := c.Args().Slice()
	if i := slices.Index(os.Args, "qemu-virtiofs"); i >= 0 {
		args = os.Args[i+1:]
	}
	k := virtiofsKeeper(args, logger)
	// Told to stop (union9p qemu's SIGTERM, a terminal's SIGINT): the
	// workers go first, so none outlives the keeper.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		k.Close()
		os.Exit(0)
	}()
	// A union that cannot be served fails here, before QEMU starts (the
	// worker has said why on stderr).
	if err := k.Prestart(); err != nil {
		return cli.Exit("qemu-virtiofs: "+err.Error(), exitFailure)
	}
	ln, err := net.FileListener(os.NewFile(virtiofsListenFd, "listen"))
	if err != nil {
		return cli.Exit("qemu-virtiofs: listening socket: "+err.Error(), exitFailure)
	}
	ready.Write([]byte{1})
	ready.Close()
	// One QEMU at a time; a QEMU that reconnects (chardev reconnect=)
	// gets a fresh device, and a fresh worker, on the same union.
	for {
		conn, err := ln.Accept()
		if err != nil {
			return cli.Exit("qemu-virtiofs: accept: "+err.Error(), exitFailure)
		}
		if err := serveVhostUser(conn.(*net.UnixConn), k.Serve); err != nil {
			logger.Print(err)
		}
	}
}

func runQemuVirtiofsWorker(c *cli.Context) error {
	ready := os.NewFile(virtiofsReadyFd, "ready")
	cfg, u, err := openQemuChildUnion(c, "qemu-virtiofs-worker", "virtiofs")
	if err != nil {
		return err
	}
	defer u.Close()
	logger := log.New(os.Stderr, "union9p qemu-virtiofs: ", 0)
	p, err := virtfs.NewProtocol(u, logger, union.Squash{UID: cfg.squashU, GID: cfg.squashG})
	if err != nil {
		return cli.Exit("qemu-virtiofs-worker: "+err.Error(), exitFailure)
	}
	if err := confine(cfg.sandbox, cfg.layers, c.Bool("read-only"), slog.Default()); err != nil {
		return cli.Exit("qemu-virtiofs-worker: "+err.Error(), exitFailure)
	}
	ready.Write([]byte{1})
	ready.Close()
	d := vhostuser.New(vhostuser.Config{Queues: 1 + virtiofsRequestQueues, Logger: logger}, virtfs.NewSession(p))
	// The socket is blocking: the device is its only reader, and the
	// keeper waits for each reply. It ends with the keeper's connection
	// to QEMU, or with the keeper.
	if err := d.Serve(virtiofsWorkerFd); err != nil {
		logger.Print(err)
	}
	return nil
}

// serveVhostUser serves one QEMU connection with serve until it ends.
func serveVhostUser(conn *net.UnixConn, serve func(fd int) error) error {
	defer conn.Close()
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	// The keeper's reads block: it is this connection's only reader, and
	// QEMU waits for each reply.
	cerr := raw.Control(func(fd uintptr) {
		if err := syscall.SetNonblock(int(fd), false); err != nil {
			serr = err
			return
		}
		serr = serve(int(fd))
	})
	if cerr != nil {
		return cerr
	}
	return serr
}

// virtiofsServer is the qemu-virtiofs keeper of one union. The keeper
// restarts its workers itself; the keeper is not restarted: QEMU's
// connection lives in it, so if it ends the guest's device is gone
// until QEMU is restarted.
type virtiofsServer struct {
	name   string
	socket string
	child  *qemuChild
}

// startVirtiofs starts the server of union u listening on a socket in
// dir and waits until it is serving (or has failed).
func startVirtiofs(u qemuUnion, dir string) (*virtiofsServer, error) {
	sock := filepath.Join(dir, u.name+".vfs")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("virtiofs transport for %s: %w", u.name, err)
	}
	ln.SetUnlinkOnClose(false)
	lf, err := ln.File()
	ln.Close()
	if err != nil {
		return nil, err
	}
	defer lf.Close() // the child has its own copy
	child, err := startQemuChild("qemu-virtiofs", "the virtiofs server of "+u.name, u.serve, lf)
	if err != nil {
		return nil, err
	}
	return &virtiofsServer{name: u.name, socket: sock, child: child}, nil
}

// args are QEMU's arguments for this union's device.
func (s *virtiofsServer) args() []string { return qemu.VirtiofsArgs(s.socket, s.name) }

// stop ends the server: SIGTERM, then SIGKILL after 5 s.
func (s *virtiofsServer) stop() { s.child.stop(syscall.SIGTERM, syscall.SIGKILL) }
