package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/union9p/union9p/cmd/union9p/internal/sandbox"
	"github.com/union9p/union9p/p9srv"
	"github.com/union9p/union9p/union"
	"github.com/union9p/union9p/union/tenant"
	"github.com/urfave/cli/v2"
)

// shutdownGrace is how long in-flight requests get after SIGTERM/SIGINT.
const shutdownGrace = 30 * time.Second

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve a union over 9P2000.L until SIGTERM or SIGINT",
		Description: `The union is lower directories (read-only, topmost first) under an upper
directory that receives all changes, as overlayfs; the lower directories are
never written. Give the layers with --lower/--upper/--workdir or with
overlayfs's -o lowerdir=A:B,upperdir=U,workdir=W.

Addresses (--listen, repeatable): unix:PATH, tcp:HOST:PORT, vsock:PORT,
fd:N (an inherited listening socket) or stdio (one connection on stdin and
stdout). Under systemd socket activation (LISTEN_FDS) the passed sockets
are served as well.

Examples:
  union9p serve --lower /srv/base --upper /srv/vm1/upper --workdir /srv/vm1/work --listen unix:/run/vm1.9p
  union9p serve -o lowerdir=/a:/b --read-only --listen tcp:127.0.0.1:5640
  union9p serve --lower /srv/base --tenants /srv/tenants --control /run/union9p/control.sock \
      --listen unix:/run/union9p/vm1.sock,tenant=vm1 --listen unix:/run/union9p/vm2.sock,tenant=vm2

With --tenants DIR, each tenant NAME has its own upper in DIR/NAME over the
shared lowers, and each listener serves one tenant (ADDR,tenant=NAME): a
guest's tenant is the socket it connects to. ADDR,tenant=* is a trusted
listener whose clients pick an existing tenant by their attach's aname.
Manage tenants with 'union9p tenant' on the --control socket.`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "lower", EnvVars: []string{"UNION9P_LOWER"},
				Usage: "read-only lower `DIR`, repeatable, topmost first (A:B is also accepted, as in overlayfs)"},
			&cli.StringFlag{Name: "upper", EnvVars: []string{"UNION9P_UPPER"},
				Usage: "writable upper `DIR` that receives all changes"},
			&cli.StringFlag{Name: "workdir", EnvVars: []string{"UNION9P_WORKDIR"},
				Usage: "empty work `DIR` on the upper's filesystem (required with --upper)"},
			&cli.StringFlag{Name: "options", Aliases: []string{"o"}, EnvVars: []string{"UNION9P_OPTIONS"},
				Usage: "overlayfs-style `OPTS`: lowerdir=A:B,upperdir=U,workdir=W (instead of the flags above); redirect_dir=on|follow|off (default on), metacopy=on|off (default off)"},
			&cli.StringSliceFlag{Name: "listen", EnvVars: []string{"UNION9P_LISTEN"},
				Usage: "`ADDR` to serve on, repeatable: unix:PATH, tcp:HOST:PORT, vsock:PORT, fd:N or stdio"},
			&cli.UintFlag{Name: "msize", Value: p9srv.DefaultMaxMsize, EnvVars: []string{"UNION9P_MSIZE"},
				Usage: "largest 9P message size granted to clients, in `BYTES` (4096 to 4194304)"},
			&cli.BoolFlag{Name: "read-only", EnvVars: []string{"UNION9P_READ_ONLY"},
				Usage: "serve the lower directories without an upper; changes fail with EROFS"},
			&cli.Int64Flag{Name: "squash-uid", Value: -1, EnvVars: []string{"UNION9P_SQUASH_UID"},
				Usage: "own everything clients create or chown by this `UID` (for untrusted guests)"},
			&cli.Int64Flag{Name: "squash-gid", Value: -1, EnvVars: []string{"UNION9P_SQUASH_GID"},
				Usage: "own everything clients create or chown by this `GID` (for untrusted guests)"},
			&cli.BoolFlag{Name: "trace", EnvVars: []string{"UNION9P_TRACE"},
				Usage: "log one line per 9P message"},
			&cli.StringFlag{Name: "tenants", EnvVars: []string{"UNION9P_TENANTS"},
				Usage: "serve many guests: `DIR` holds one private upper per tenant (DIR/NAME/{upper,work}) over the shared --lower; every --listen then names its tenant (,tenant=NAME)"},
			&cli.StringFlag{Name: "control", Value: defaultControl, EnvVars: []string{"UNION9P_CONTROL"},
				Usage: "with --tenants: owner-only control `SOCKET` for `union9p tenant`"},
			quotaFlags[0], quotaFlags[1],
			sandboxFlag(),
		},
		Action: runServe,
	}
}

// serveConfig is the parsed command line of `serve`.
type serveConfig struct {
	layers  union.Options
	listen  []string
	msize   uint32
	squashU *uint32
	squashG *uint32
	trace   bool
	sandbox sandbox.Mode
	// tenants is --tenants; listenTenant[i] is the tenant of listen[i]
	// ("" for none, AnameTenant for a trusted listener).
	tenants      string
	listenTenant []string
	// quota is the tenants' default quota (--quota, --quota-inodes).
	quota tenant.Quota
}

func runServe(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("serve: unexpected argument %q", c.Args().First()), exitUsage)
	}
	cfg, err := parseServeFlags(c)
	if err != nil {
		return cli.Exit("serve: "+err.Error(), exitUsage)
	}
	activated, err := p9srv.SystemdListeners()
	if err != nil {
		return cli.Exit("serve: "+err.Error(), exitFailure)
	}
	if len(cfg.listen) == 0 && len(activated) == 0 {
		return cli.Exit("serve: no --listen address (and no systemd socket activation)", exitUsage)
	}
	if cfg.tenants != "" {
		return runServeTenants(c, cfg, activated)
	}

	// union.Open checks the layers before it writes anything.
	u, err := union.Open(cfg.layers)
	if err != nil {
		closeAll(activated)
		return cli.Exit("serve: "+err.Error(), exitFailure)
	}
	defer u.Close()
	log := slog.Default()
	srv, err := p9srv.New(p9srv.Config{Union: u, MaxMsize: cfg.msize, SquashUID: cfg.squashU,
		SquashGID: cfg.squashG, Logger: log, Trace: cfg.trace})
	if err != nil {
		closeAll(activated)
		return cli.Exit("serve: "+err.Error(), exitFailure)
	}
	listeners, stdio := activated, false
	for _, spec := range cfg.listen {
		if spec == "stdio" {
			stdio = true
			continue
		}
		ln, err := listen(spec)
		if err != nil {
			closeAll(listeners)
			return cli.Exit("serve: "+err.Error(), exitFailure)
		}
		listeners = append(listeners, ln)
	}

	// Layers and listeners are open: from here on the server needs only
	// them (see package sandbox).
	if err := confine(cfg.sandbox, cfg.layers, c.Bool("read-only"), log); err != nil {
		closeAll(listeners)
		return cli.Exit("serve: "+err.Error(), exitFailure)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logStatsOnSignal(ctx, log)
	var wg sync.WaitGroup
	failed := make(chan error, len(listeners)+1)
	for _, ln := range listeners {
		log.Info("serving", "addr", ln.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ctx, ln); err != nil && !errors.Is(err, p9srv.ErrServerClosed) {
				failed <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
			}
		}()
	}
	stdioDone := make(chan struct{})
	if stdio {
		go func() {
			defer close(stdioDone)
			if err := srv.ServeConn(p9srv.Stdio()); err != nil {
				log.Warn("stdio connection", "err", err)
			}
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
		// A second SIGTERM/SIGINT during the grace period kills at once.
		stop()
		log.Info("stopping: finishing requests in flight")
	case runErr = <-failed:
	case <-stdioDone:
		if len(listeners) > 0 {
			select { // stdio ended; the listeners go on
			case <-ctx.Done():
			case runErr = <-failed:
			}
		}
	}
	return drain(srv, &wg, log, runErr)
}

// parseServeFlags checks the flags' syntax; the layers are checked by
// union.Open and the addresses by p9srv.Listen.
func parseServeFlags(c *cli.Context) (serveConfig, error) {
	var cfg serveConfig
	defaultFeatures(&cfg.layers)
	for _, l := range c.StringSlice("lower") {
		cfg.layers.Lowers = append(cfg.layers.Lowers, splitLowers(l)...)
	}
	cfg.layers.Upper, cfg.layers.Workdir = c.String("upper"), c.String("workdir")
	if o := c.String("options"); o != "" {
		layerFlags := len(cfg.layers.Lowers) > 0 || cfg.layers.Upper != "" || cfg.layers.Workdir != ""
		for _, opt := range strings.Split(o, ",") {
			key, val, _ := strings.Cut(opt, "=")
			if ok, err := applyFeatureOption(&cfg.layers, key, val); ok {
				if err != nil {
					return cfg, fmt.Errorf("-o: %w", err)
				}
				continue
			}
			if layerFlags && key != "" {
				return cfg, errors.New("give the layers either with -o or with --lower/--upper/--workdir, not both")
			}
			switch key {
			case "lowerdir":
				cfg.layers.Lowers = splitLowers(val)
			case "upperdir":
				cfg.layers.Upper = val
			case "workdir":
				cfg.layers.Workdir = val
			case "":
			default:
				return cfg, fmt.Errorf("-o: unknown option %q (want lowerdir, upperdir, workdir, redirect_dir, metacopy)", key)
			}
		}
	}
	if len(cfg.layers.Lowers) == 0 && cfg.layers.Upper == "" {
		// An upper alone is a union too (a plain writable directory).
		return cfg, errors.New("no layers: give --lower DIR, --upper DIR, or -o lowerdir=DIR")
	}
	cfg.tenants = c.String("tenants")
	quota, qerr := parseQuotaFlags(c, cfg.tenants != "")
	if qerr != nil {
		return cfg, qerr
	}
	cfg.quota = quota
	if cfg.tenants != "" {
		if err := checkTenantLayers(c, cfg.layers); err != nil {
			return cfg, err
		}
	} else if c.Bool("read-only") {
		if cfg.layers.Upper != "" || cfg.layers.Workdir != "" {
			return cfg, errors.New("--read-only serves without an upper: drop --upper/--workdir")
		}
	} else if cfg.layers.Upper == "" {
		return cfg, errors.New("no upper directory: give --upper and --workdir, or --read-only")
	} else if cfg.layers.Workdir == "" {
		return cfg, errors.New("--upper needs --workdir (an empty directory on the same filesystem)")
	}
	for _, spec := range c.StringSlice("listen") {
		spec, tname, err := splitListenTenant(spec, cfg.tenants != "")
		if err != nil {
			return cfg, err
		}
		cfg.listenTenant = append(cfg.listenTenant, tname)
		scheme, _, _ := strings.Cut(spec, ":")
		switch scheme {
		case "unix", "tcp", "vsock", "fd", "stdio", passScheme:
		default:
			return cfg, fmt.Errorf("--listen %q: unknown scheme %q (want unix:PATH, tcp:HOST:PORT, vsock:PORT, fd:N or stdio)", spec, scheme)
		}
		cfg.listen = append(cfg.listen, spec)
	}
	msize := c.Uint("msize")
	if msize < 4096 || msize > p9srv.DefaultMaxMsize {
		return cfg, fmt.Errorf("--msize %d: want 4096 to %d", msize, p9srv.DefaultMaxMsize)
	}
	cfg.msize = uint32(msize)
	var err error
	if cfg.squashU, err = squashID(c, "squash-uid"); err != nil {
		return cfg, err
	}
	if cfg.squashG, err = squashID(c, "squash-gid"); err != nil {
		return cfg, err
	}
	cfg.trace = c.Bool("trace")
	if cfg.sandbox, err = sandbox.ParseMode(c.String("sandbox")); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// splitLowers splits an overlayfs lowerdir list (A:B, "\:" escapes a colon).
func splitLowers(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case s[i] == ':':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}

func squashID(c *cli.Context, name string) (*uint32, error) {
	v := c.Int64(name)
	if v == -1 {
		return nil, nil
	}
	if v < 0 || v >= 1<<32-1 {
		return nil, fmt.Errorf("--%s %d: want 0 to 4294967294", name, v)
	}
	id := uint32(v)
	return &id, nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// drain ends a serve: requests in flight get shutdownGrace to finish, the
// serving goroutines in wg are waited for, and runErr (what ended serving
// early, if anything) becomes the exit status.
func drain(srv *p9srv.Server, wg *sync.WaitGroup, log *slog.Logger, runErr error) error {
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	wg.Wait()
	if runErr != nil {
		return cli.Exit("serve: "+runErr.Error(), exitFailure)
	}
	return nil
}
