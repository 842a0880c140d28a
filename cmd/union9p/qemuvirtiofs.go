package main

import (
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/union9p/union9p/qemu"
	"github.com/union9p/union9p/qemu/vhostuser"
	"github.com/union9p/union9p/qemu/virtfs"
	"github.com/urfave/cli/v2"
)

// The virtiofs transport of `union9p qemu`: each union is a vhost-user-fs
// device served by a `union9p qemu-virtiofs` child (packages
// qemu/vhostuser and qemu/virtfs's Protocol). QEMU connects to the
// child's unix socket and hands it the guest's RAM and virtqueues; the
// guest mounts `-t virtiofs union9p.NAME DIR`. Neither root nor the host
// kernel's FUSE is needed, and every request (mknod and mkfifo included)
// is the union's to answer.

// Descriptors of the qemu-virtiofs child.
const (
	virtiofsListenFd = 3 // the listening unix socket QEMU connects to
	virtiofsReadyFd  = 4 // closed (after one byte) once the union is open and the sandbox applied
)

// virtiofsRequestQueues is how many request queues the device accepts
// (QEMU's num-request-queues, 1 by default), besides the hiprio queue.
const virtiofsRequestQueues = 8

// qemuVirtiofsCommand is the hidden command that serves one union as a
// vhost-user-fs device on the listening socket on descriptor 3; it takes
// serve's layer flags.
func qemuVirtiofsCommand() *cli.Command {
	return &cli.Command{
		Name:   "qemu-virtiofs",
		Hidden: true,
		Usage:  "internal: serve a union as a vhost-user-fs device on the socket listening on descriptor 3 (run by union9p qemu --transport virtiofs)",
		Flags:  serveCommand().Flags,
		Action: runQemuVirtiofs,
	}
}

func runQemuVirtiofs(c *cli.Context) error {
	ready := os.NewFile(virtiofsReadyFd, "ready")
	cfg, u, err := openQemuChildUnion(c, "qemu-virtiofs", "virtiofs")
	if err != nil {
		return err
	}
	defer u.Close()
	logger := log.New(os.Stderr, "union9p qemu-virtiofs: ", 0)
	p, err := virtfs.NewProtocol(u, logger, virtfs.Squash{UID: cfg.squashU, GID: cfg.squashG})
	if err != nil {
		return cli.Exit("qemu-virtiofs: "+err.Error(), exitFailure)
	}
	ln, err := net.FileListener(os.NewFile(virtiofsListenFd, "listen"))
	if err != nil {
		return cli.Exit("qemu-virtiofs: listening socket: "+err.Error(), exitFailure)
	}
	if err := confine(cfg.sandbox, cfg.layers, c.Bool("read-only"), slog.Default()); err != nil {
		return cli.Exit("qemu-virtiofs: "+err.Error(), exitFailure)
	}
	ready.Write([]byte{1})
	ready.Close()
	// One QEMU at a time; a QEMU that reconnects (chardev reconnect=)
	// gets a fresh device on the same union.
	for {
		conn, err := ln.Accept()
		if err != nil {
			return cli.Exit("qemu-virtiofs: accept: "+err.Error(), exitFailure)
		}
		if err := serveVhostUser(conn.(*net.UnixConn), p, logger); err != nil {
			logger.Print(err)
		}
	}
}

// serveVhostUser serves one QEMU connection until it ends.
func serveVhostUser(conn *net.UnixConn, h vhostuser.Handler, logger *log.Logger) error {
	defer conn.Close()
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	d := vhostuser.New(vhostuser.Config{Queues: 1 + virtiofsRequestQueues, Logger: logger}, h)
	var serr error
	// The device's reads block: it is this connection's only reader, and
	// QEMU waits for each reply.
	cerr := raw.Control(func(fd uintptr) {
		if err := syscall.SetNonblock(int(fd), false); err != nil {
			serr = err
			return
		}
		serr = d.Serve(int(fd))
	})
	if cerr != nil {
		return cerr
	}
	return serr
}

// virtiofsServer is the qemu-virtiofs child of one union. It is not
// restarted: the guest's FUSE session (its node ids and open files)
// lives in it, so when it ends the guest's mount fails until QEMU is
// restarted.
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
