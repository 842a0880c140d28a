package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/union9p/union9p/p9srv/control"
	"github.com/union9p/union9p/qemu"
	"github.com/union9p/union9p/union/tenant"
)

// `union9p qemu --tenant NAME`: a union of the guest that is not served
// by a server of its own but by a tenant of a running `union9p serve
// --tenants` (whose control socket is --control, default
// $UNION9P_CONTROL or /run/union9p/control.sock), so that any number of
// guests share one server process and its lowers. Each guest connection
// reaches the server through its attach socket (CONTROL.attach, see
// tenantattach.go) with the tenant's name beside it:
//   - tcp: QEMU's guestfwd courier (`union9p qemu-courier --tenant NAME
//     ATTACH-SOCKET`) hands the guest's TCP connection over;
//   - tap and serial: union9p qemu accepts the connection (on the tap's
//     listener in the guest's namespace, or on the unix socket the
//     virtio-serial port's chardev connects to) and hands it over itself.
// The tenant is fixed by union9p qemu's command line; the guest cannot
// name another. A reset of the tenant (`union9p tenant reset NAME`) ends
// the guest's connections; it mounts again to see the pristine base.

// qemuControl is the control socket of the running server that --tenant
// unions attach to (--control, before the first union).
var qemuControl = envOr("UNION9P_CONTROL", defaultControl)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// leadingOption takes one of opts ("--opt VALUE" or "--opt=VALUE") off the
// front of args.
func leadingOption(args []string, opts ...string) (opt, val string, rest []string, ok bool) {
	if len(args) == 0 {
		return "", "", args, false
	}
	for _, o := range opts {
		if args[0] == o && len(args) >= 2 {
			return o, args[1], args[2:], true
		}
		if v, found := strings.CutPrefix(args[0], o+"="); found {
			return o, v, args[1:], true
		}
	}
	return "", "", args, false
}

// checkTenantUnion checks a --tenant union's flags: a valid tenant name
// and no serve flags (the running server has the layers).
func checkTenantUnion(u qemuUnion) error {
	if u.tenant == "" {
		return nil
	}
	if err := tenant.ValidName(u.tenant); err != nil {
		return fmt.Errorf("--tenant: %w", err)
	}
	if len(u.serve) > 0 {
		return fmt.Errorf("--tenant %s takes no serve flags (%s): the running server has the layers", u.tenant, strings.Join(u.serve, " "))
	}
	return nil
}

// checkTenants makes sure, before QEMU starts, that the server runs, may
// be used by us, and has every tenant asked for: errors a guest could only
// see as a mount that fails.
func checkTenants(unions []qemuUnion) error {
	var want []string
	for _, u := range unions {
		if u.tenant != "" {
			want = append(want, u.tenant)
		}
	}
	if len(want) == 0 {
		return nil
	}
	cl, err := control.Dial(qemuControl)
	if err != nil {
		if errors.Is(err, control.ErrNotRunning) {
			return fmt.Errorf("--tenant %s: %w (start union9p serve --tenants DIR, or give its --control socket)", want[0], err)
		}
		return fmt.Errorf("--tenant %s: %w", want[0], err)
	}
	defer cl.Close()
	list, err := cl.List()
	if err != nil {
		return fmt.Errorf("--tenant %s: control socket %s: %w", want[0], qemuControl, err)
	}
	have := map[string]bool{}
	for _, in := range list {
		have[in.Name] = true
	}
	for _, name := range want {
		if !have[name] {
			return fmt.Errorf("--tenant %s: the server at %s has no such tenant (add it with: union9p tenant add %s)", name, qemuControl, name)
		}
	}
	if fi, err := os.Stat(attachPath(qemuControl)); err != nil || fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("the server at %s has no attach socket %s (an older union9p?)", qemuControl, attachPath(qemuControl))
	}
	return nil
}

// attachTenant sets up the transports of a --tenant union: the courier
// for tcp, a forwarder for serial and (when tapLn is set) tap. Forwarders
// run until union9p qemu exits.
func attachTenant(tr transports, u qemuUnion, dir, self string, tapLn *os.File, tapConns *guestConns) ([]qemu.NetUnion, []qemu.SerialPort, error) {
	att, err := filepath.Abs(attachPath(qemuControl))
	if err != nil {
		return nil, nil, err
	}
	var nets []qemu.NetUnion
	var ports []qemu.SerialPort
	if tr.tcp {
		nets = append(nets, qemu.NetUnion{Name: u.name, Courier: []string{self, "qemu-courier", "--tenant", u.tenant, att}})
	}
	if tr.serial {
		sock := filepath.Join(dir, u.name+".sock")
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			return nil, nil, fmt.Errorf("serial port of %s: %w", u.name, err)
		}
		if err := os.Chmod(sock, 0o600); err != nil {
			ln.Close()
			return nil, nil, err
		}
		go forwardToTenant(ln, att, u, nil)
		ports = append(ports, qemu.SerialPort{Name: qemu.PortPrefix + u.name, Socket: sock})
	}
	if tapLn != nil {
		ln, err := net.FileListener(tapLn)
		if err != nil {
			return nil, nil, fmt.Errorf("tap listener of %s: %w", u.name, err)
		}
		go forwardToTenant(ln, att, u, tapConns)
	}
	fmt.Fprintf(os.Stderr, "union9p qemu: %s is tenant %s of the server at %s; in the guest: union9p guest-mount %s /mnt/%s\n", u.name, u.tenant, qemuControl, u.name, u.name)
	return nets, ports, nil
}

// forwardToTenant hands every connection accepted on ln to the tenant's
// server, until ln fails. With keep set, a handed-over connection is kept
// there (to be ended when the guest exits) instead of closed.
func forwardToTenant(ln net.Listener, att string, u qemuUnion, keep *guestConns) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				fmt.Fprintf(os.Stderr, "union9p qemu: %s: accept: %v\n", u.name, err)
			}
			return
		}
		sc, ok := c.(syscall.Conn)
		var rerr error
		if !ok {
			rerr = errors.New("not a socket")
		} else if raw, err := sc.SyscallConn(); err != nil {
			rerr = err
		} else if cerr := raw.Control(func(fd uintptr) { rerr = qemu.AttachFD(att, u.tenant, int(fd)) }); cerr != nil {
			rerr = cerr
		}
		if rerr != nil {
			fmt.Fprintf(os.Stderr, "union9p qemu: %s: attaching a guest connection to tenant %s: %v\n", u.name, u.tenant, rerr)
		}
		if rerr == nil && keep != nil {
			keep.keep(c)
			continue
		}
		c.Close() // the server has its own copy
	}
}
