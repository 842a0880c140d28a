package main

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/union9p/union9p/qemu"
	"github.com/urfave/cli/v2"
)

// guestMountCommand is `union9p guest-mount UNION DIR`, run inside a
// guest: it mounts on DIR a union that the host serves with `union9p
// qemu`, over the fastest transport the guest was given:
//
//   - TCP over the union NIC (`union9p qemu --transport tcp`, the
//     default): the address comes from fw_cfg, the NIC is brought up with
//     a static address, the command connects (TCP_NODELAY) and hands the
//     socket to the kernel (trans=fd), which then talks to the server
//     with no process in between;
//   - a virtio-serial port (--transport serial): the kernel's trans=fd
//     cannot write to a port, so the command makes a socketpair, starts a
//     relay between the port and one end (a background child, `union9p
//     guest-relay`, unless --foreground) and mounts the other end.
//
// It returns once the mount is usable; a relay exits by itself after the
// unmount.
func guestMountCommand() *cli.Command {
	return &cli.Command{
		Name:      "guest-mount",
		Usage:     "mount a union served by the host to this QEMU guest (run in the guest)",
		ArgsUsage: "UNION DIR",
		Description: `UNION is the name given to union9p qemu --name (NAME or union9p.NAME): it
is mounted -t virtiofs when the host serves it as a virtio-fs device (tag
union9p.NAME, the virtiofs transport; needs virtiofs), else with trans=virtio when QEMU exports it over virtio-9p (mount tag
union9p.NAME, the virtfs transport; needs 9pnet_virtio), else with trans=tcp
when the host offers it on the network (fw_cfg opt/union9p/NAME, needs the
qemu_fw_cfg and virtio_net modules), else through its virtio-serial port.
Explicit transports: virtiofs:NAME, virtfs:NAME, tcp:ADDR:PORT (the NIC is set up all the
same), serial:NAME, a device path (/dev/vport0p1), or vsock:PORT /
vsock:CID:PORT. Options (-o) are 9p client options (msize, cache, access,
posixacl, ...) and generic mount options (ro, nosuid, noatime, ...).
Example: union9p guest-mount -o cache=mmap root /mnt`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "options", Aliases: []string{"o"}, Usage: "comma-separated mount options"},
			&cli.BoolFlag{Name: "foreground", Aliases: []string{"f"}, Usage: "relay in this process and return after the unmount (serial)"},
			&cli.DurationFlag{Name: "wait", Value: 10 * time.Second, Usage: "how long to wait for the port or NIC to appear"},
			&cli.StringFlag{Name: "relay", Value: "copy", Usage: "serial relay: copy (read/write) or splice (guest-to-host by splice(2))"},
			&cli.BoolFlag{Name: "kernel-tcp", Usage: "tcp: let the kernel connect (trans=tcp, Nagle on; slower, for comparison)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return cli.Exit("guest-mount: need UNION and DIR", 2)
			}
			spec, dir := c.Args().Get(0), c.Args().Get(1)
			flags, opts := qemu.SplitMountOptions(splitOptions(c.StringSlice("options")))
			relay := c.String("relay")
			if relay != "copy" && relay != "splice" {
				return cli.Exit("guest-mount: --relay: want copy or splice", 2)
			}
			if done, err := guestMountVirtiofs(spec, dir, flags, opts); done {
				if err != nil {
					return cli.Exit("guest-mount: "+err.Error(), 32)
				}
				return nil
			}
			tr, err := resolveGuestSpec(spec, c.Duration("wait"))
			if err == nil {
				if tr.tag != "" {
					err = guestMountVirtfs(tr.tag, dir, flags, opts)
				} else if tr.tcp != "" {
					err = guestMountTCP(tr.tcp, dir, flags, opts, c.Duration("wait"), c.Bool("kernel-tcp"))
				} else {
					err = guestMount(tr.port, dir, flags, opts, c.Duration("wait"), c.Bool("foreground"), relay)
				}
			}
			if err != nil {
				return cli.Exit("guest-mount: "+err.Error(), 32)
			}
			return nil
		},
	}
}

// guestTransport is what a guest-mount spec resolved to: an address for
// trans=tcp, a port spec for the relay, or a virtio-9p mount tag.
type guestTransport struct{ tcp, port, tag string }

// resolveGuestSpec maps guest-mount's UNION argument to a transport. A
// plain name is looked up on the network first (fw_cfg), then as a
// virtio-serial port; it waits up to wait for either to appear.
func resolveGuestSpec(spec string, wait time.Duration) (guestTransport, error) {
	switch {
	case strings.HasPrefix(spec, "tcp:"):
		return guestTransport{tcp: spec}, nil
	case strings.HasPrefix(spec, "serial:"):
		return guestTransport{port: strings.TrimPrefix(spec, "serial:")}, nil
	case strings.HasPrefix(spec, "virtfs:"):
		return guestTransport{tag: qemu.VirtfsTagPrefix + strings.TrimPrefix(spec, "virtfs:")}, nil
	case strings.HasPrefix(spec, "vsock:") || strings.Contains(spec, "/"):
		return guestTransport{port: spec}, nil
	}
	deadline := time.Now().Add(wait)
	for {
		// virtio devices are probed when their driver loads, before
		// this runs: a tag is there at once or not at all.
		if tag := qemu.VirtfsTagPrefix + strings.TrimPrefix(spec, qemu.VirtfsTagPrefix); qemu.VirtfsTagExists(tag) {
			return guestTransport{tag: tag}, nil
		}
		if addr, err := qemu.LookupNet(spec, 0); err == nil {
			return guestTransport{tcp: addr}, nil
		}
		// fw_cfg lists every file as soon as it is probed: a name
		// missing there is not on the network, and a port will do.
		if qemu.FwCfgProbed() || time.Now().After(deadline) {
			if qemu.PortExists(spec) {
				return guestTransport{port: spec}, nil
			}
		}
		if time.Now().After(deadline) {
			return guestTransport{}, fmt.Errorf("union %q: not offered over virtio-9p (tag %s%s), on the network (fw_cfg %s%s) nor as a virtio-serial port", spec, qemu.VirtfsTagPrefix, strings.TrimPrefix(spec, qemu.VirtfsTagPrefix), qemu.FwCfgPrefix, strings.TrimPrefix(spec, qemu.PortPrefix))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// guestMountTCP brings the union NIC up, connects to addr and mounts the
// connection with trans=fd: the kernel reads and writes the TCP socket
// itself, with no process in between. The socket is ours rather than
// the kernel's trans=tcp one because the kernel's has Nagle's algorithm
// on: a request larger than a segment (any 4 KiB page write of
// cache=loose) then waits for QEMU's user network to acknowledge the
// previous segment, measured at ~50 ms a request. kernelTCP mounts with
// the kernel's trans=tcp all the same (for measuring).
func guestMountTCP(addr, dir string, flags uintptr, opts []string, wait time.Duration, kernelTCP bool) error {
	ip, port, err := qemu.ParseTCP(addr)
	if err != nil {
		return err
	}
	if _, err := qemu.SetupNet(wait); err != nil {
		return err
	}
	if kernelTCP {
		data, err := qemu.NinePTCPData(port, opts)
		if err != nil {
			return err
		}
		// The tcp transport takes the server's address as the source.
		return qemu.MountFD(ip.String(), dir, flags, data)
	}
	sock, err := qemu.DialTCP(ip, port)
	if err != nil {
		return err
	}
	defer sock.Close()
	if !slices.ContainsFunc(opts, func(o string) bool { return strings.HasPrefix(o, "msize=") }) {
		opts = append([]string{fmt.Sprintf("msize=%d", qemu.DefaultTCPMsize)}, opts...)
	}
	data, err := qemu.NinePData(int(sock.Fd()), opts)
	if err != nil {
		return err
	}
	// The kernel takes its own reference; ours goes at return.
	return qemu.MountFD("union9p:"+addr, dir, flags, data)
}

// guestRelayCommand is the hidden background half of guest-mount: it
// relays between the port (fd 3) and its end of the socketpair (fd 4) until
// the kernel drops the other end at unmount.
func guestRelayCommand() *cli.Command {
	return &cli.Command{
		Name:   "guest-relay",
		Hidden: true,
		Usage:  "internal: relay of guest-mount (port on fd 3, socket on fd 4)",
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "splice"}},
		Action: func(c *cli.Context) error {
			port, sock := os.NewFile(3, "port"), os.NewFile(4, "socket")
			relay := qemu.Relay
			if c.Bool("splice") {
				relay = qemu.SpliceRelay
			}
			if err := relay(port, sock); err != nil {
				kmsg("union9p guest-relay: %v", err)
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}

// guestMount mounts through a relay between the port spec and a
// socketpair (trans=fd).
func guestMount(spec, dir string, flags uintptr, opts []string, wait time.Duration, foreground bool, relayMode string) error {
	port, err := qemu.OpenPort(spec, wait)
	if err != nil {
		return err
	}
	defer port.Close()
	relayEnd, kernelEnd, err := qemu.Socketpair()
	if err != nil {
		return err
	}
	defer relayEnd.Close()
	defer kernelEnd.Close()
	data, err := qemu.NinePData(int(kernelEnd.Fd()), opts)
	if err != nil {
		return err
	}

	relayDone := make(chan error, 1)
	if foreground {
		relay := qemu.Relay
		if relayMode == "splice" {
			relay = qemu.SpliceRelay
		}
		go func() { relayDone <- relay(port, relayEnd) }()
	} else {
		relay := exec.Command("/proc/self/exe", "guest-relay", "--splice="+fmt.Sprint(relayMode == "splice"))
		relay.Args[0] = "union9p" // never mount.union9p: see init in mount.go
		relay.ExtraFiles = []*os.File{port, relayEnd}
		relay.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := relay.Start(); err != nil {
			return fmt.Errorf("start relay: %w", err)
		}
		// The relay is not waited for: it outlives this process and
		// exits after the unmount (or at once, if the mount fails and
		// the last reference to the kernel's end goes away below).
		_ = relay.Process.Release()
	}

	if err := qemu.MountFD("union9p:"+spec, dir, flags, data); err != nil {
		return err
	}
	// The kernel holds its own reference now; ours must go for the relay
	// to see the end of the connection at unmount.
	kernelEnd.Close()
	if !foreground {
		return nil
	}
	return <-relayDone
}

// guestMountVirtfs mounts QEMU's virtio-9p export tag (the virtfs
// transport: QEMU's 9p server in front of the host's FUSE union).
func guestMountVirtfs(tag, dir string, flags uintptr, opts []string) error {
	data, err := qemu.NinePVirtioData(opts)
	if err != nil {
		return err
	}
	return qemu.MountFD(tag, dir, flags, data)
}

// splitOptions flattens repeated -o values and their comma lists.
func splitOptions(values []string) []string {
	var out []string
	for _, v := range values {
		for _, o := range strings.Split(v, ",") {
			if o != "" {
				out = append(out, o)
			}
		}
	}
	return out
}

// kmsg reports an error of a background helper in the kernel log, the one
// place where it stays visible after the command that started the helper
// has returned; it falls back to stderr.
func kmsg(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(msg)
		f.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, msg)
	}
}
