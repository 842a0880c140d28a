package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
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
// Transports (--transport, a comma-separated list; default auto:
// virtiofs for each union with serve flags, and net for a --tenant union,
// whose server is shared):
//   - net: tap when run as root and the namespace can be made, else tcp.
//   - tcp: a virtio-net NIC on a QEMU user network with restrict=on (no
//     packet leaves QEMU) whose guestfwd address for each union runs
//     `union9p qemu-courier`, which hands the guest's connection to the
//     union's server (see qemu.PassFD). The guest kernel mounts with
//     trans=tcp: no relay process in the guest, one server connection
//     per mount. The fastest path measured (README "Guests").
//   - tap (root only): the same NIC, addresses and fw_cfg names, but on a
//     tap device in a network namespace made for the guest alone (no
//     other interface, no route), with the unions listening in it: the
//     guest's TCP meets the host kernel's with 64 KiB segments (see
//     qemu.NewTap).
//   - serial: a virtio-serial port per union whose host end is the
//     server's unix socket; the guest relays it (guest-mount).
//   - virtfs (root only; alone, or --virtfs on one union): the union is a
//     FUSE filesystem on a detached host mount that only QEMU holds,
//     served by a `union9p qemu-virtfs` child, and QEMU's own 9p server
//     exports it over virtio-9p (qemuvirtfs.go, package qemu/virtfs).
//   - virtiofs (alone, or --virtiofs on one union): union9p is a
//     vhost-user-fs device for each union, served by a `union9p
//     qemu-virtiofs` child; the guest's RAM goes into a shared memfd
//     (qemuvirtiofs.go, packages qemu/vhostuser and qemu/virtfs).
func qemuCommand() *cli.Command {
	return &cli.Command{
		Name:      "qemu",
		Usage:     "run a QEMU guest with unions served to it",
		ArgsUsage: "[--transport auto|net|tcp|tap|serial|virtfs|virtiofs|...,serial] [--control SOCKET] [--name NAME] [--virtfs|--virtiofs] SERVE-FLAGS...|--tenant TENANT [--next [--name NAME] [--virtfs|--virtiofs] SERVE-FLAGS...|--tenant TENANT]... -- QEMU-COMMAND...",
		Description: `SERVE-FLAGS are those of "union9p serve" (--lower, --upper, --workdir, -o, ...)
except --listen. NAME defaults to 0, 1, ...; in the guest, mount a union with
  union9p guest-mount NAME DIR
--transport (before the first union; default auto):
  auto    virtiofs for each union with serve flags (the fastest path, no root
          needed), net for a --tenant union (its server is shared).
  net     tap as root (where the namespace can be made), else tcp.
  tcp     the guest's kernel mounts with trans=tcp over a virtio-net NIC on a
          QEMU user network with restrict=on (nothing the guest sends leaves
          QEMU); union NAME answers at 10.0.2.100:564, :565, ... and the guest
          finds it by name through fw_cfg (opt/union9p/NAME). guest-mount brings
          the NIC up itself (no DHCP). Fastest; needs virtio_net, qemu_fw_cfg.
  tap     (root) the same, but the NIC is a tap in a network namespace made
          for this guest alone (nothing else in it), so the guest's TCP meets
          the host kernel's with 64 KiB segments instead of QEMU's user net.
  serial  a virtio-serial port union9p.NAME; guest-mount relays it to the
          kernel (trans=fd). Slower; needs only virtio_console.
  virtfs  (root) each union is a FUSE filesystem on a host mount that only
          this QEMU holds (gone when QEMU exits), exported by QEMU's own 9p
          server over virtio-9p (mount tag union9p.NAME; the guest mounts with
          trans=virtio, needs 9pnet_virtio). QEMU's zero-copy transport; QEMU's
          9p server runs in the QEMU process, and it refuses FIFOs, sockets and
          device nodes (ENXIO). --virtfs puts one union on it and leaves the
          others on the transports above.
  virtiofs union9p is a vhost-user-fs device for each union (mount tag
          union9p.NAME; the guest mounts -t virtiofs, needs virtiofs). The guest's
          requests and data are read and written in its own RAM, which
          union9p qemu puts in a shared memfd (-m SIZE is read from the QEMU
          command; a command that names its own memory backend must make it
          share=on). No root, no host FUSE; FIFOs and device nodes work.
          --virtiofs puts one union on it and leaves the others on the
          transports above.
--tenant TENANT, instead of SERVE-FLAGS: the union is tenant TENANT of a running
"union9p serve --tenants DIR" whose control socket is --control (before the
first union; default $UNION9P_CONTROL or /run/union9p/control.sock): no server
is started, and any number of guests share that one server. The guest's
connections reach the tenant through the server's owner-only attach socket
(CONTROL.attach); the guest cannot choose another tenant. "union9p tenant reset
TENANT" ends the guest's connections; mount again to see the pristine base.
Example:
  union9p qemu --name root --lower base --upper up --workdir work -- \
    qemu-system-x86_64 -nographic -kernel vmlinuz -initrd initrd.gz
  union9p qemu --control /run/union9p/control.sock --name root --tenant alice -- \
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

// qemuUnion is one union to serve: the port name and the serve flags,
// or the tenant of a running server it attaches to (qemutenant.go).
type qemuUnion struct {
	name     string
	serve    []string
	tenant   string
	virtfs   bool // served over the virtfs transport (qemuvirtfs.go)
	virtiofs bool // served over the virtiofs transport (qemuvirtiofs.go)
}

// transports says which transports `union9p qemu` gives the guest.
// auto is the default: each union with serve flags on virtiofs, a
// tenant's union on net; net is tap when running as root and the
// namespace can be made, else tcp.
type transports struct{ auto, net, tcp, tap, serial, virtfs, virtiofs bool }

// parseTransports reads --transport's value. auto with serial means net
// with serial (virtiofs cannot share a union with another transport), as
// auto meant before virtiofs became the default.
func parseTransports(v string) (transports, error) {
	var t transports
	for _, w := range strings.Split(v, ",") {
		switch w {
		case "tcp":
			t.tcp = true
		case "serial":
			t.serial = true
		case "tap":
			t.tap = true
		case "auto":
			t.auto = true
		case "net":
			t.net = true
		case "virtfs":
			t.virtfs = true
		case "virtiofs":
			t.virtiofs = true
		default:
			return t, fmt.Errorf("--transport %q: want auto, net, tcp, tap, serial, virtfs, virtiofs, or one of net, tcp and tap with serial", v)
		}
	}
	if t.auto && t.serial {
		t.auto, t.net = false, true
	}
	if t.virtiofs && btoi(t.auto)+btoi(t.net)+btoi(t.tcp)+btoi(t.tap)+btoi(t.serial)+btoi(t.virtfs) > 0 {
		return t, fmt.Errorf("--transport %q: virtiofs serves every union itself; give it alone (or --virtiofs to one union)", v)
	}
	if t.virtfs && btoi(t.auto)+btoi(t.net)+btoi(t.tcp)+btoi(t.tap)+btoi(t.serial) > 0 {
		return t, fmt.Errorf("--transport %q: virtfs serves every union itself; give it alone (or --virtfs to one union)", v)
	}
	if btoi(t.auto)+btoi(t.net)+btoi(t.tcp)+btoi(t.tap) > 1 {
		return t, fmt.Errorf("--transport %q: auto, net, tcp and tap are ways to the same unions; pick one", v)
	}
	return t, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// parseQemuArgs splits the command line at --next and --; --transport
// and --control may come first.
func parseQemuArgs(args []string) (transports, []qemuUnion, []string, error) {
	tr := transports{auto: true}
	for {
		opt, val, rest, ok := leadingOption(args, "--transport", "--control")
		if !ok {
			break
		}
		args = rest
		if opt == "--control" {
			qemuControl = val
			continue
		}
		var err error
		if tr, err = parseTransports(val); err != nil {
			return tr, nil, nil, err
		}
	}
	unions, qemuArgs, err := splitQemuArgs(args)
	if err != nil {
		return tr, nil, nil, err
	}
	for i := range unions {
		u := &unions[i]
		if u.virtfs && u.virtiofs {
			return tr, nil, nil, fmt.Errorf("union %s: --virtfs and --virtiofs are two transports; pick one", u.name)
		}
		if u.tenant != "" {
			if u.virtfs || tr.virtfs || u.virtiofs || tr.virtiofs {
				return tr, nil, nil, fmt.Errorf("--tenant %s: a tenant's server is shared and cannot use the virtfs or virtiofs transport", u.tenant)
			}
			if tr.auto {
				tr.net = true // a tenant's union goes on the network
			}
			continue
		}
		if !u.virtfs {
			u.virtiofs = u.virtiofs || tr.virtiofs || tr.auto
		}
		u.virtfs = u.virtfs || tr.virtfs
	}
	return tr, unions, qemuArgs, nil
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
		if err := checkTenantUnion(cur); err != nil {
			return err
		}
		if len(cur.serve) == 0 && cur.tenant == "" {
			return errors.New("a union without serve flags (or --tenant NAME)")
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
		case a == "--virtfs":
			cur.virtfs = true
		case a == "--virtiofs":
			cur.virtiofs = true
		case a == "--tenant" && i+1 < sep:
			i++
			cur.tenant = args[i]
		case strings.HasPrefix(a, "--tenant="):
			cur.tenant = strings.TrimPrefix(a, "--tenant=")
		case a == "--control" || strings.HasPrefix(a, "--control="):
			return nil, nil, errors.New("--control comes before the first union")
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

	// Unions on the virtfs transport have their own servers (qemuvirtfs.go);
	// the others share the network and serial transports.
	var vunions, fsunions, netUnions []qemuUnion
	for _, u := range unions {
		if u.virtiofs {
			fsunions = append(fsunions, u)
		} else if u.virtfs {
			vunions = append(vunions, u)
		} else {
			netUnions = append(netUnions, u)
		}
	}
	unions = netUnions

	var tap *qemu.Tap
	if len(unions) == 0 {
		tr = transports{}
	} else if tr.net && os.Geteuid() == 0 {
		// The fastest safe path measured; a machine without tun or
		// namespaces falls back to the user network.
		if tap, err = qemu.NewTap(len(unions)); err == nil {
			tr.tap = true
		} else {
			fmt.Fprintf(os.Stderr, "union9p qemu: %v; using QEMU's user network (--transport tcp)\n", err)
		}
	} else if tr.tap {
		if tap, err = qemu.NewTap(len(unions)); err != nil {
			return 0, err
		}
	}
	if tap != nil {
		defer tap.Close()
	}
	if tr.net && !tr.tap {
		tr.tcp = true
	}

	if err := checkTenants(unions); err != nil {
		return 0, err
	}
	var servers []*qemuServer
	defer func() { stopServers(servers) }()
	tapConns := &guestConns{}
	defer tapConns.shutdownAll()
	var ports []qemu.SerialPort
	var nets []qemu.NetUnion
	var names []string
	for i, u := range unions {
		if u.tenant != "" {
			var tapLn *os.File
			if tr.tap {
				tapLn = tap.Listeners[i]
			}
			n, p, err := attachTenant(tr, u, dir, self, tapLn, tapConns)
			if err != nil {
				return 0, err
			}
			nets, ports = append(nets, n...), append(ports, p...)
			names = append(names, u.name)
			continue
		}
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
		if tr.tap {
			listen = append(listen, "--listen", "fd:3")
		}
		serveArgs := append(append([]string{"serve"}, u.serve...), listen...)
		var extraFiles []*os.File
		if tr.tap {
			extraFiles = []*os.File{tap.Listeners[i]}
		}
		s := &qemuServer{name: u.name, done: make(chan struct{}), stop: make(chan struct{}), newCmd: func() *exec.Cmd {
			srv := exec.Command("/proc/self/exe", serveArgs...)
			srv.Args[0] = "union9p"
			srv.ExtraFiles = extraFiles
			srv.Stdout, srv.Stderr = os.Stderr, os.Stderr
			srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
			return srv
		}}
		if err := s.start(); err != nil {
			return 0, fmt.Errorf("start server for %s: %w", u.name, err)
		}
		servers = append(servers, s)
		for _, w := range wait {
			if err := waitSocket(w, s.exited, 15*time.Second); err != nil {
				close(s.done) // not supervised yet
				return 0, fmt.Errorf("server for %s: %w", u.name, err)
			}
		}
		go s.supervise()
		if tr.tcp {
			nets = append(nets, qemu.NetUnion{Name: u.name, Courier: []string{self, "qemu-courier", pass}})
		}
		if tr.serial {
			ports = append(ports, qemu.SerialPort{Name: qemu.PortPrefix + u.name, Socket: sock})
		}
		names = append(names, u.name)
		fmt.Fprintf(os.Stderr, "union9p qemu: in the guest: union9p guest-mount %s /mnt/%s\n", u.name, u.name)
	}

	var vservers []*virtfsServer
	defer func() {
		for _, v := range vservers {
			v.stop()
		}
	}()
	for _, u := range vunions {
		v, err := startVirtfs(u)
		if err != nil {
			return 0, err
		}
		vservers = append(vservers, v)
		fmt.Fprintf(os.Stderr, "union9p qemu: in the guest: union9p guest-mount %s /mnt/%s\n", u.name, u.name)
	}

	var fsservers []*virtiofsServer
	defer func() {
		for _, v := range fsservers {
			v.stop()
		}
	}()
	for _, u := range fsunions {
		v, err := startVirtiofs(u, dir)
		if err != nil {
			return 0, err
		}
		fsservers = append(fsservers, v)
		fmt.Fprintf(os.Stderr, "union9p qemu: in the guest: union9p guest-mount %s /mnt/%s\n", u.name, u.name)
	}

	extra := append(qemu.NetArgs(nets), qemu.SerialArgs(ports)...)
	if len(fsservers) > 0 {
		mem, err := qemu.VirtiofsMemArgs(qemuArgs)
		if err != nil {
			return 0, err
		}
		extra = append(extra, mem...)
		for _, v := range fsservers {
			extra = append(extra, v.args()...)
		}
	}
	var files []*os.File // QEMU's descriptors 3, 4, ...
	if tr.tap {
		extra = append(extra, qemu.TapArgs(3, names)...)
		files = append(files, tap.Dev)
	}
	for _, v := range vservers {
		extra = append(extra, qemu.VirtfsArgs(3+len(files), v.name)...)
		files = append(files, v.mnt)
	}
	vm := exec.Command(qemuArgs[0], append(qemuArgs[1:], extra...)...)
	vm.ExtraFiles = files
	vm.Stdin, vm.Stdout, vm.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := vm.Start(); err != nil {
		return 0, err
	}
	for _, v := range vservers {
		// QEMU holds the only copy now: its exit unmounts.
		v.mnt.Close()
		v.mnt = nil
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

// qemuServer is the `union9p serve` child of one union, restarted by
// supervise whenever it exits while QEMU runs: a guest whose connection
// ended with the old server mounts again and reaches the new one on the
// same pass socket, listening socket or serial port (README "Guests").
type qemuServer struct {
	name   string
	newCmd func() *exec.Cmd
	stop   chan struct{} // closed by stopServers
	done   chan struct{} // closed when supervise has returned

	mu      sync.Mutex    // guards the fields below
	cmd     *exec.Cmd     // the current process
	exited  chan struct{} // closed when cmd has exited
	started time.Time
}

// start starts a new server process.
func (s *qemuServer) start() error {
	cmd := s.newCmd()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited, s.started = cmd, exited, time.Now()
	s.mu.Unlock()
	return nil
}

// current returns the current process and its exit channel.
func (s *qemuServer) current() (*exec.Cmd, chan struct{}, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd, s.exited, s.started
}

// supervise restarts the server each time it exits, until stop closes;
// a server that keeps failing is restarted at most every 30 s.
func (s *qemuServer) supervise() {
	defer close(s.done)
	backoff := time.Second
	for {
		cmd, exited, started := s.current()
		select {
		case <-s.stop:
			return
		case <-exited:
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		fmt.Fprintf(os.Stderr, "union9p qemu: the server of %s ended (%v); restarting it in %v\n", s.name, cmd.ProcessState, backoff)
		select {
		case <-s.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
		if err := s.start(); err != nil {
			fmt.Fprintf(os.Stderr, "union9p qemu: restarting the server of %s: %v\n", s.name, err)
		}
	}
}

// waitSocket waits until a server has created its socket, or has exited.
func waitSocket(path string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited before listening")
		case <-deadline:
			return fmt.Errorf("no socket %s after %v", path, timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stopServers ends supervision, then the servers with SIGTERM, then
// SIGKILL after 5 s.
func stopServers(servers []*qemuServer) {
	for _, s := range servers {
		close(s.stop)
		<-s.done
		cmd, _, _ := s.current()
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, s := range servers {
		cmd, exited, _ := s.current()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
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
		Flags:  []cli.Flag{&cli.StringFlag{Name: "tenant", Usage: "PASS-SOCKET is a tenant server's attach socket; the connection is this tenant's"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("", 2)
			}
			pass := qemu.PassFD
			if name := c.String("tenant"); name != "" {
				pass = func(path string, fd int) error { return qemu.AttachFD(path, name, fd) }
			}
			if err := pass(c.Args().First(), 0); err != nil {
				// No one to tell but the guest, which must not get
				// text: it sees the connection close.
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}
