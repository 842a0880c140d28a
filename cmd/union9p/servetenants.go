package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/union9p/union9p/p9srv"
	"github.com/union9p/union9p/p9srv/control"
	"github.com/union9p/union9p/qemu"
	"github.com/union9p/union9p/union"
	"github.com/union9p/union9p/union/tenant"
	"github.com/urfave/cli/v2"
)

// `union9p serve --tenants DIR` serves many guests from one process: each
// listener is bound to one tenant (",tenant=NAME" after its address), so a
// guest's tenant is where it connects, never what it asks for. A listener
// given ",tenant=*" is trusted: its clients choose a tenant by the aname of
// their attach (mount -o aname=NAME), which only existing tenants may be.
// The tenants of the listeners are made at start if missing; others are
// made with `union9p tenant add`. The control socket (--control) serves
// `union9p tenant`.

// listenTenantOpt is the option that binds a listener to a tenant.
const listenTenantOpt = ",tenant="

// splitListenTenant splits "ADDR,tenant=NAME" into ADDR and NAME (the last
// ",tenant=" counts, so a unix path may hold commas). NAME must be a valid
// tenant name or p9srv.AnameTenant ("*"); a tenant needs --tenants, and
// with --tenants every listener needs one.
func splitListenTenant(spec string, tenants bool) (addr, name string, err error) {
	i := strings.LastIndex(spec, listenTenantOpt)
	if i < 0 {
		if tenants {
			return "", "", fmt.Errorf("--listen %q: with --tenants every listener names its tenant: %s%sNAME (or %s* for a trusted listener whose clients choose by aname)",
				spec, spec, listenTenantOpt, listenTenantOpt)
		}
		return spec, "", nil
	}
	addr, name = spec[:i], spec[i+len(listenTenantOpt):]
	if !tenants {
		return "", "", fmt.Errorf("--listen %q: a tenant listener needs --tenants DIR", spec)
	}
	if addr == "stdio" {
		return "", "", fmt.Errorf("--listen %q: stdio cannot be a tenant listener; use unix:PATH%sNAME", spec, listenTenantOpt)
	}
	if name != p9srv.AnameTenant {
		if err := tenant.ValidName(name); err != nil {
			return "", "", fmt.Errorf("--listen %q: %w", spec, err)
		}
	}
	return addr, name, nil
}

// quotaFlags set the tenants' default quota; `union9p tenant quota` sets a
// tenant's own.
var quotaFlags = []cli.Flag{
	&cli.StringFlag{Name: "quota", EnvVars: []string{"UNION9P_QUOTA"},
		Usage: "with --tenants: default quota of a tenant's upper, in `BYTES` of apparent size (suffix K, M, G, T; default unlimited); past it, writes, creates and copy-ups fail with EDQUOT"},
	&cli.StringFlag{Name: "quota-inodes", EnvVars: []string{"UNION9P_QUOTA_INODES"},
		Usage: "with --tenants: default quota of a tenant's upper, in `INODES` (files, directories, links, whiteouts; default unlimited)"},
}

// parseQuotaFlags reads --quota and --quota-inodes, which need --tenants.
func parseQuotaFlags(c *cli.Context, tenants bool) (tenant.Quota, error) {
	var q tenant.Quota
	var err error
	if !tenants && (c.IsSet("quota") || c.IsSet("quota-inodes")) {
		return q, errors.New("--quota and --quota-inodes are per tenant: they need --tenants DIR")
	}
	if c.IsSet("quota") {
		if q.Bytes, err = parseSize(c.String("quota")); err != nil {
			return q, fmt.Errorf("--quota: %w", err)
		}
	}
	if c.IsSet("quota-inodes") {
		if q.Inodes, err = parseCount(c.String("quota-inodes")); err != nil {
			return q, fmt.Errorf("--quota-inodes: %w", err)
		}
	}
	return q, nil
}

// checkTenantLayers checks the layer flags of a multi-tenant server:
// shared lowers, no upper of its own.
func checkTenantLayers(c *cli.Context, layers union.Options) error {
	switch {
	case len(layers.Lowers) == 0:
		return errors.New("--tenants needs the shared --lower DIR")
	case layers.Upper != "" || layers.Workdir != "":
		return errors.New("--tenants gives each tenant its own upper (DIR/NAME/upper): drop --upper/--workdir")
	case c.Bool("read-only"):
		return errors.New("--tenants serves writable tenants: drop --read-only")
	}
	return nil
}

// runServeTenants is `serve --tenants`.
func runServeTenants(c *cli.Context, cfg serveConfig, activated []net.Listener) error {
	fail := func(lns []net.Listener, code int, err error) error {
		closeAll(lns)
		return cli.Exit("serve: "+err.Error(), code)
	}
	if len(activated) > 0 {
		return fail(activated, exitUsage, errors.New("--tenants: systemd-activated sockets carry no tenant; pass them as --listen fd:N,tenant=NAME (LISTEN_FDS starts at 3)"))
	}
	log := slog.Default()
	reg, err := tenant.Open(tenant.Config{Dir: cfg.tenants, Lowers: cfg.layers.Lowers, Ownership: cfg.layers.Ownership,
		DefaultQuota: cfg.quota, Logger: log})
	if err != nil {
		return fail(nil, exitFailure, err)
	}
	defer reg.Close()
	for _, name := range cfg.listenTenant {
		if name == p9srv.AnameTenant {
			continue
		}
		if err := reg.Add(name); err != nil && !errors.Is(err, tenant.ErrExists) {
			return fail(nil, exitFailure, err)
		}
	}
	ts := &p9srv.Tenants{Registry: reg, SquashUID: cfg.squashU, SquashGID: cfg.squashG}
	srv, err := p9srv.New(p9srv.Config{MaxMsize: cfg.msize, Logger: log, Trace: cfg.trace})
	if err != nil {
		return fail(nil, exitFailure, err)
	}
	ctlPath := c.String("control")
	if !c.IsSet("control") {
		// The default lives in /run/union9p, which may not exist yet.
		if err := os.MkdirAll(filepath.Dir(ctlPath), 0o755); err != nil {
			return fail(nil, exitFailure, fmt.Errorf("control socket %s: %w", ctlPath, err))
		}
	}
	ctlLn, err := control.Listen(ctlPath)
	if err != nil {
		return fail(nil, exitFailure, err)
	}
	attLn, err := control.Listen(attachPath(ctlPath))
	if err != nil {
		return fail([]net.Listener{ctlLn}, exitFailure, err)
	}
	defer attLn.Close()
	var listeners []net.Listener
	for _, spec := range cfg.listen {
		ln, err := listenTenant(spec)
		if err != nil {
			return fail(append(listeners, ctlLn), exitFailure, err)
		}
		listeners = append(listeners, ln)
	}
	// The tenants directory is written (resets, removes, new tenants), the
	// lowers only read.
	if err := confine(cfg.sandbox, union.Options{Lowers: cfg.layers.Lowers, Upper: reg.Dir(), Workdir: reg.Dir()}, false, log); err != nil {
		return fail(append(listeners, ctlLn), exitFailure, err)
	}

	ctl := &control.Server{Tenants: reg, Conns: ts, Logger: log}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logStatsOnSignal(ctx, log)
	var wg sync.WaitGroup
	failed := make(chan error, len(listeners)+1)
	for i, ln := range listeners {
		name := cfg.listenTenant[i]
		log.Info("serving", "addr", cfg.listen[i], "tenant", name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.ServeTenant(ctx, ln, ts, name); err != nil && !errors.Is(err, p9srv.ErrServerClosed) {
				failed <- fmt.Errorf("serve %s: %w", cfg.listen[i], err)
			}
		}()
	}
	log.Info("control socket", "path", ctlPath)
	att := &tenantAttach{reg: reg, srv: srv, ts: ts, ctx: ctx, wg: &wg, log: log}
	go qemu.ServeAttach(attLn.(qemu.UnixAcceptor), att.attach)
	go func() {
		if err := ctl.Serve(ctlLn); err != nil {
			failed <- fmt.Errorf("control socket %s: %w", ctlPath, err)
		}
	}()

	var runErr error
	select {
	case <-ctx.Done():
		stop()
		log.Info("stopping: finishing requests in flight")
	case runErr = <-failed:
	}
	// The control server first: a reset must not run while connections
	// end; then the 9P server, then (deferred) the registry.
	ctl.Close()
	ctlLn.Close()
	attLn.Close()
	return drain(srv, &wg, log, runErr)
}

// listenTenant opens a tenant listener: a unix socket is made owner-only
// (0600, never reachable by others while it is made; see control.Listen),
// for whoever can connect to it is that tenant; other schemes as listen.
func listenTenant(spec string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(spec, "unix:"); ok && path != "" {
		return control.Listen(path)
	}
	return listen(spec)
}
