package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/union9p/union9p/qemu"
	"github.com/urfave/cli/v2"
)

// guestMountCommand is `union9p guest-mount PORT DIR`, run inside a guest:
// it mounts the union that the host serves on a virtio-serial port (or
// vsock) on DIR.
//
// The kernel's trans=fd cannot write to a virtio-serial port, so the
// command makes a socketpair, starts a relay between the port and one end
// (a background child, `union9p guest-relay`, unless --foreground) and
// mounts the other end with trans=fd. It returns once the mount is usable;
// the relay exits by itself after the unmount.
func guestMountCommand() *cli.Command {
	return &cli.Command{
		Name:      "guest-mount",
		Usage:     "mount a union served by the host over virtio-serial or vsock (run in the guest)",
		ArgsUsage: "PORT DIR",
		Description: `PORT is a virtio-serial port name (union9p.NAME, or NAME), a device path
(/dev/vport0p1), or vsock:PORT / vsock:CID:PORT. Options (-o) are 9p client
options (msize, cache, access, posixacl, ...) and generic mount options
(ro, nosuid, noatime, ...). Example: union9p guest-mount -o cache=mmap union9p.root /mnt`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "options", Aliases: []string{"o"}, Usage: "comma-separated mount options"},
			&cli.BoolFlag{Name: "foreground", Aliases: []string{"f"}, Usage: "relay in this process and return after the unmount"},
			&cli.DurationFlag{Name: "wait", Value: 10 * time.Second, Usage: "how long to wait for the port to appear"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return cli.Exit("guest-mount: need PORT and DIR", 2)
			}
			spec, dir := c.Args().Get(0), c.Args().Get(1)
			flags, opts := qemu.SplitMountOptions(splitOptions(c.StringSlice("options")))
			if err := guestMount(spec, dir, flags, opts, c.Duration("wait"), c.Bool("foreground")); err != nil {
				return cli.Exit("guest-mount: "+err.Error(), 32)
			}
			return nil
		},
	}
}

// guestRelayCommand is the hidden background half of guest-mount: it
// relays between the port (fd 3) and its end of the socketpair (fd 4) until
// the kernel drops the other end at unmount.
func guestRelayCommand() *cli.Command {
	return &cli.Command{
		Name:   "guest-relay",
		Hidden: true,
		Usage:  "internal: relay of guest-mount (port on fd 3, socket on fd 4)",
		Action: func(c *cli.Context) error {
			port, sock := os.NewFile(3, "port"), os.NewFile(4, "socket")
			if err := qemu.Relay(port, sock); err != nil {
				kmsg("union9p guest-relay: %v", err)
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}

func guestMount(spec, dir string, flags uintptr, opts []string, wait time.Duration, foreground bool) error {
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
		go func() { relayDone <- qemu.Relay(port, relayEnd) }()
	} else {
		relay := exec.Command("/proc/self/exe", "guest-relay")
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
