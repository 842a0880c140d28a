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

// qemuCommand is `union9p qemu [--transport T] [--name NAME] SERVE-FLAGS...
// [--next ...] -- QEMU-COMMAND...`: it serves each union (a `union9p
// serve` child per union), runs the QEMU command with the transports
// added, and stops the servers when QEMU exits, exiting with QEMU's
// status.
//
// Transports (--transport, a comma-separated list; default tcp):
//   - tcp: a virtio-net NIC on a QEMU user network with restrict=on (no
//     packet leaves QEMU) whose guestfwd address for each union runs
//     `union9p qemu-courier`, which hands the guest's connection to the
//     union's server (see qemu.PassFD). The guest kernel mounts with
//     trans=tcp: no relay process in the guest, one server connection
//     per mount. The fastest path measured (README "Guests").
//   - serial: a virtio-serial port per union whose host end is the
//     server's unix socket; the guest relays it (guest-mount).
func qemuCommand() *cli.Command {
	return &cli.Command{
		Name:      "qemu",
		Usage:     "run a QEMU guest with unions served to it",
		ArgsUsage: "[--transport tcp|serial|tcp,serial] [--name NAME] SERVE-FLAGS... [--next [--name NAME] SERVE-FLAGS...]... -- QEMU-COMMAND...",
		Description: `SERVE-FLAGS are those of "union9p serve" (--lower, --upper, --workdir, -o, ...)
except --listen. NAME defaults to 0, 1, ...; in the guest, mount a union with
  union9p guest-mount NAME DIR
--transport (before the first union; default tcp):
  tcp     the guest's kernel mounts with trans=tcp over a virtio-net NIC on a
          QEMU user network with restrict=on (nothing the guest sends leaves
          QEMU); union NAME answers at 10.0.2.100:564, :565, ... and the guest
          finds it by name through fw_cfg (opt/union9p/NAME). guest-mount brings
          the NIC up itself (no DHCP). Fastest; needs virtio_net, qemu_fw_cfg.
  serial  a virtio-serial port union9p.NAME; guest-mount relays it to the
          kernel (trans=fd). Slower; needs only virtio_console.
Example:
  union9p qemu --name root --lower base --upper up --workdir work -- \
    qemu-system-x86_64 -nographic -kernel vmlinuz -initrd initrd.gz`,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			if args := c.Args().Slice(); len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
				// Flags are not parsed here (they belong to serve and QEMU).
				return cli.ShowSubcommandHelp(c)
			}
			tr, unions, qemuArgs, err := parseQemuArgs(c.Args().Slice())
			if err != nil {
				return cli.Exit("qemu: "+err.Error(), 2)
			}
			code, err := runQemu(tr, unions, qemuArgs)
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

// transports says which transports `union9p qemu` gives the guest.
type transports struct{ tcp, serial bool }

// parseTransports reads --transport's value.
func parseTransports(v string) (transports, error) {
	var t transports
	for _, w := range strings.Split(v, ",") {
		switch w {
		case "tcp":
			t.tcp = true
		case "serial":
			t.serial = true
		default:
			return t, fmt.Errorf("--transport %q: want tcp, serial or tcp,serial", v)
		}
	}
	return t, nil
}

// parseQemuArgs splits the command line at --next and --; --transport
// may come first.
func parseQemuArgs(args []string) (transports, []qemuUnion, []string, error) {
	tr := transports{tcp: true}
	switch {
	case len(args) >= 2 && args[0] == "--transport":
		var err error
		if tr, err = parseTransports(args[1]); err != nil {
			return tr, nil, nil, err
		}
		args = args[2:]
	case len(args) >= 1 && strings.HasPrefix(args[0], "--transport="):
		var err error
		if tr, err = parseTransports(strings.TrimPrefix(args[0], "--transport=")); err != nil {
			return tr, nil, nil, err
		}
		args = args[1:]
	}
	unions, qemuArgs, err := splitQemuArgs(args)
	return tr, unions, qemuArgs, err
}

// splitQemuArgs splits the command line at --next and --.
func splitQemuArgs(args []string) ([]qemuUnion, []string, error) {
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
		case a == "--transport" || strings.HasPrefix(a, "--transport="):
			return nil, nil, errors.New("--transport comes before the first union")
		default:
			cur.serve = append(cur.serve, a)
		}
	}
	if err := flush(); err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for _, u := range unions {
		if seen[u.name] {
			return nil, nil, fmt.Errorf("repeated union name %q", u.name)
		}
		if err := qemu.CheckNetName(u.name); err != nil {
			return nil, nil, err
		}
		seen[u.name] = true
	}
	return unions, args[sep+1:], nil
}

// runQemu starts the servers, runs QEMU and returns its exit status.
func runQemu(tr transports, unions []qemuUnion, qemuArgs []string) (int, error) {
	dir, err := os.MkdirTemp("", "union9p-qemu-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find own binary for the courier: %w", err)
	}

	var servers []*qemuServer
	defer func() { stopServers(servers) }()
	var ports []qemu.SerialPort
	var nets []qemu.NetUnion
	for _, u := range unions {
		sock := filepath.Join(dir, u.name+".sock")
		pass := filepath.Join(dir, u.name+".pass")
		var listen, wait []string
		if tr.tcp {
			listen = append(listen, "--listen", passScheme+":"+pass)
			wait = append(wait, pass)
		}
		if tr.serial {
			listen = append(listen, "--listen", "unix:"+sock)
			wait = append(wait, sock)
		}
		srv := exec.Command("/proc/self/exe", append(append([]string{"serve"}, u.serve...), listen...)...)
		srv.Args[0] = "union9p"
		srv.Stdout, srv.Stderr = os.Stderr, os.Stderr
		srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := srv.Start(); err != nil {
			return 0, fmt.Errorf("start server for %s: %w", u.name, err)
		}
		s := &qemuServer{cmd: srv, done: make(chan struct{})}
		go func() { _ = srv.Wait(); close(s.done) }()
		servers = append(servers, s)
		for _, w := range wait {
			if err := waitSocket(w, s, 15*time.Second); err != nil {
				return 0, fmt.Errorf("server for %s: %w", u.name, err)
			}
		}
		if tr.tcp {
			nets = append(nets, qemu.NetUnion{Name: u.name, Courier: []string{self, "qemu-courier", pass}})
		}
		if tr.serial {
			ports = append(ports, qemu.SerialPort{Name: qemu.PortPrefix + u.name, Socket: sock})
		}
		fmt.Fprintf(os.Stderr, "union9p qemu: in the guest: union9p guest-mount %s /mnt/%s\n", u.name, u.name)
	}

	extra := append(qemu.NetArgs(nets), qemu.SerialArgs(ports)...)
	vm := exec.Command(qemuArgs[0], append(qemuArgs[1:], extra...)...)
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

// qemuCourierCommand is the hidden command that QEMU runs for each TCP
// connection a guest opens to a union's guestfwd address: the connection
// is its stdin and stdout (and stderr), and it hands it to the union's
// server on the pass socket, then exits. It must print nothing: every
// byte written to stdout or stderr would reach the guest's 9P client.
func qemuCourierCommand() *cli.Command {
	return &cli.Command{
		Name:   "qemu-courier",
		Hidden: true,
		Usage:  "internal: hand the connection on stdin to the server at PASS-SOCKET (run by QEMU)",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("", 2)
			}
			if err := qemu.PassFD(c.Args().First(), 0); err != nil {
				// No one to tell but the guest, which must not get
				// text: it sees the connection close.
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}
