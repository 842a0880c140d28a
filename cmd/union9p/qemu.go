package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/union9p/union9p/qemu"
	"github.com/urfave/cli/v2"
)

// qemuCommand is `union9p qemu [--name NAME] SERVE-FLAGS... [--next ...]
// -- QEMU-COMMAND...`: it serves each union on a unix socket (a `union9p
// serve` child per union), runs the QEMU command with a virtio-serial port
// per union added, and stops the servers when QEMU exits, exiting with
// QEMU's status.
func qemuCommand() *cli.Command {
	return &cli.Command{
		Name:      "qemu",
		Usage:     "run a QEMU guest with unions on virtio-serial ports",
		ArgsUsage: "[--name NAME] SERVE-FLAGS... [--next [--name NAME] SERVE-FLAGS...]... -- QEMU-COMMAND...",
		Description: `SERVE-FLAGS are those of "union9p serve" (--lower, --upper, --workdir, -o, ...)
except --listen. Each union becomes the virtio-serial port union9p.NAME (NAME
defaults to 0, 1, ...); in the guest, mount it with
  union9p guest-mount union9p.NAME DIR
Example:
  union9p qemu --name root --lower base --upper up --workdir work -- \
    qemu-system-x86_64 -nographic -kernel vmlinuz -initrd initrd.gz`,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			if args := c.Args().Slice(); len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
				// Flags are not parsed here (they belong to serve and QEMU).
				return cli.ShowSubcommandHelp(c)
			}
			unions, qemuArgs, err := parseQemuArgs(c.Args().Slice())
			if err != nil {
				return cli.Exit("qemu: "+err.Error(), 2)
			}
			code, err := runQemu(unions, qemuArgs)
			if err != nil {
				return cli.Exit("qemu: "+err.Error(), 1)
			}
			if code != 0 {
				return cli.Exit("", code)
			}
			return nil
		},
	}
}

// qemuUnion is one union to serve: the port name and the serve flags.
type qemuUnion struct {
	name  string
	serve []string
}

// parseQemuArgs splits the command line at --next and --.
func parseQemuArgs(args []string) ([]qemuUnion, []string, error) {
	sep := -1
	for i, a := range args {
		if a == "--" {
			sep = i
			break
		}
	}
	if sep < 0 || sep == len(args)-1 {
		return nil, nil, errors.New("no QEMU command after --")
	}
	var unions []qemuUnion
	cur := qemuUnion{}
	flush := func() error {
		if len(cur.serve) == 0 {
			return errors.New("a union without serve flags")
		}
		if cur.name == "" {
			cur.name = fmt.Sprint(len(unions))
		}
		unions = append(unions, cur)
		cur = qemuUnion{}
		return nil
	}
	for i := 0; i < sep; i++ {
		a := args[i]
		switch {
		case a == "--next":
			if err := flush(); err != nil {
				return nil, nil, err
			}
		case a == "--name" && i+1 < sep:
			i++
			cur.name = args[i]
		case strings.HasPrefix(a, "--name="):
			cur.name = strings.TrimPrefix(a, "--name=")
		case a == "--listen" || strings.HasPrefix(a, "--listen="):
			return nil, nil, errors.New("--listen is chosen by union9p qemu")
		default:
			cur.serve = append(cur.serve, a)
		}
	}
	if err := flush(); err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for _, u := range unions {
		if seen[u.name] || strings.ContainsAny(u.name, ",/ ") {
			return nil, nil, fmt.Errorf("bad or repeated union name %q", u.name)
		}
		seen[u.name] = true
	}
	return unions, args[sep+1:], nil
}

// runQemu starts the servers, runs QEMU and returns its exit status.
func runQemu(unions []qemuUnion, qemuArgs []string) (int, error) {
	dir, err := os.MkdirTemp("", "union9p-qemu-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)

	var servers []*qemuServer
	defer func() { stopServers(servers) }()
	var ports []qemu.SerialPort
	for _, u := range unions {
		sock := filepath.Join(dir, u.name+".sock")
		srv := exec.Command("/proc/self/exe", append(append([]string{"serve"}, u.serve...), "--listen", "unix:"+sock)...)
		srv.Args[0] = "union9p"
		srv.Stdout, srv.Stderr = os.Stderr, os.Stderr
		srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := srv.Start(); err != nil {
			return 0, fmt.Errorf("start server for %s: %w", u.name, err)
		}
		s := &qemuServer{cmd: srv, done: make(chan struct{})}
		go func() { _ = srv.Wait(); close(s.done) }()
		servers = append(servers, s)
		if err := waitSocket(sock, s, 15*time.Second); err != nil {
			return 0, fmt.Errorf("server for %s: %w", u.name, err)
		}
		ports = append(ports, qemu.SerialPort{Name: qemu.PortPrefix + u.name, Socket: sock})
		fmt.Fprintf(os.Stderr, "union9p qemu: in the guest: union9p guest-mount %s%s /mnt/%s\n", qemu.PortPrefix, u.name, u.name)
	}

	vm := exec.Command(qemuArgs[0], append(qemuArgs[1:], qemu.SerialArgs(ports)...)...)
	vm.Stdin, vm.Stdout, vm.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := vm.Start(); err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- vm.Wait() }()
	for {
		select {
		case s := <-sigs:
			_ = vm.Process.Signal(s)
		case err := <-done:
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				return exit.ExitCode(), nil
			}
			return 0, err
		}
	}
}

// qemuServer is a running `union9p serve` child; done closes when it has
// exited.
type qemuServer struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// waitSocket waits until the server has created its socket, or has exited.
func waitSocket(path string, srv *qemuServer, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return nil
		}
		select {
		case <-srv.done:
			return errors.New("exited before listening")
		case <-deadline:
			return fmt.Errorf("no socket %s after %v", path, timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stopServers ends the servers with SIGTERM, then SIGKILL after 5 s.
func stopServers(servers []*qemuServer) {
	for _, s := range servers {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, s := range servers {
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
}
