package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/union9p/union9p/test/p9wire"
)

// Section "tenants" (issue 10): what many guests on one server cost. One
// server process (this program re-executed, tenantserver.go: p9srv over a
// tenants registry, one unix socket per tenant, as `union9p serve
// --tenants`) serves N tenants over one lower of -tenants-files files;
// each tenant's client attaches, lists every directory of the base and
// walks to every file (one Twalk of two names + Tclunk each, as Linux
// walks a path it has not cached), and stays attached. The server's RSS
// and live heap (after a full GC) are printed for N = 1, 10, 100, beside
// the same done by N separate servers of one union each (memserver.go),
// whose RSS and heap are summed. The attach latency of the last tenant
// (its first attach opens its union) and of a second attach to it are
// printed too.
//
// Target (issue 10): one server with 100 tenants below 2x the RSS of one
// server with one tenant.

const tenantsRSSTarget = 2.0

// tenantsPoint is one measured server (or set of servers).
type tenantsPoint struct {
	tenants   int
	rss, heap uint64
	took      time.Duration
	// attach latencies of the last tenant: first (opens its union) and a
	// second connection's.
	attachFirst, attachAgain time.Duration
}

func sectionTenants(ctx context.Context, cl *cleanups, cfg config, dir string, out io.Writer) error {
	files := cfg.TenantFiles
	lower := filepath.Join(dir, "lower")
	progress("tenants: creating %d lower files", files)
	if err := makeManyFiles(lower, files); err != nil {
		return err
	}
	dirs := (files + memoryFilesPerDir - 1) / memoryFilesPerDir

	var one []tenantsPoint
	for _, n := range cfg.TenantCounts {
		p, err := measureTenantServer(ctx, cl, lower, filepath.Join(dir, fmt.Sprintf("one-%d", n)), n, files, dirs)
		if err != nil {
			return err
		}
		one = append(one, p)
	}
	progress("tenants: %d separate servers", cfg.TenantServers)
	sep, err := measureSeparateServers(ctx, cl, lower, filepath.Join(dir, "separate"), cfg.TenantServers, files, dirs)
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "\n== tenants: one server, N tenants over one %d-file lower, each attached and having listed every directory and walked+clunked every file; RSS and live heap after GC\n", files)
	fmt.Fprintf(out, "%-34s %8s %12s %12s %12s %14s %14s\n", "server(s)", "tenants", "RSS", "live heap", "walk time", "attach last", "attach again")
	for _, p := range one {
		fmt.Fprintf(out, "%-34s %8d %9.1f MB %9.1f MB %12s %14s %14s\n", "one server", p.tenants, mb(p.rss), mb(p.heap),
			p.took.Round(time.Second), p.attachFirst.Round(time.Microsecond), p.attachAgain.Round(time.Microsecond))
	}
	fmt.Fprintf(out, "%-34s %8d %9.1f MB %9.1f MB %12s %14s %14s\n", fmt.Sprintf("%d separate servers (sums)", sep.tenants), sep.tenants,
		mb(sep.rss), mb(sep.heap), sep.took.Round(time.Second), sep.attachFirst.Round(time.Microsecond), sep.attachAgain.Round(time.Microsecond))
	first, last := one[0], one[len(one)-1]
	ratio := float64(last.rss) / float64(first.rss)
	verdict := "ok"
	if ratio >= tenantsRSSTarget {
		verdict = "MISS"
	}
	fmt.Fprintf(out, "target: RSS with %d tenants < %.0fx RSS with %d: %.2fx: %s (live heap %.2fx; %d separate servers: %.1fx the RSS of one server with %d tenants)\n",
		last.tenants, tenantsRSSTarget, first.tenants, ratio, verdict, float64(last.heap)/float64(first.heap),
		sep.tenants, float64(sep.rss)/float64(last.rss), last.tenants)
	return nil
}

// measureTenantServer starts a tenant server with n tenants, attaches a
// client to each in turn and has it walk the base, and measures.
func measureTenantServer(ctx context.Context, cl *cleanups, lower, dir string, n, files, dirs int) (tenantsPoint, error) {
	p := tenantsPoint{tenants: n}
	tdir, sdir := filepath.Join(dir, "tenants"), filepath.Join(dir, "sock")
	if err := os.MkdirAll(sdir, 0o700); err != nil {
		return p, err
	}
	spec := strings.Join([]string{lower, tdir, sdir, strconv.Itoa(n)}, "\n")
	ts, err := startStatServer(cl, tenantServerEnv, spec, "")
	if err != nil {
		return p, err
	}
	defer ts.stop()
	t0 := time.Now()
	for i := range n {
		progress("tenants: server with %d tenants: tenant %d walks the base", n, i+1)
		sock := filepath.Join(sdir, tenantName(i)+".sock")
		c, took, err := dialAttach(sock)
		if err != nil {
			return p, err
		}
		defer c.Close()
		if i == n-1 {
			p.attachFirst = took
			c2, took2, err := dialAttach(sock)
			if err != nil {
				return p, err
			}
			c2.Close()
			p.attachAgain = took2
		}
		if err := walkBase(ctx, c, files, dirs); err != nil {
			return p, fmt.Errorf("tenant %d: %w", i, err)
		}
	}
	p.took = time.Since(t0)
	return p, readMem(ts, &p)
}

// measureSeparateServers starts n servers of one union each (own upper,
// same lower), has a client of each walk the base, and sums.
func measureSeparateServers(ctx context.Context, cl *cleanups, lower, dir string, n, files, dirs int) (tenantsPoint, error) {
	sum := tenantsPoint{tenants: n}
	t0 := time.Now()
	var servers []*memServer
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for i := range n {
		progress("tenants: separate server %d walks the base", i+1)
		d := filepath.Join(dir, tenantName(i))
		upper, work := filepath.Join(d, "upper"), filepath.Join(d, "work")
		for _, x := range []string{upper, work} {
			if err := os.MkdirAll(x, 0o755); err != nil {
				return sum, err
			}
		}
		ms, err := startMemServer(cl, lower, upper, work, filepath.Join(d, "s.sock"))
		if err != nil {
			return sum, err
		}
		servers = append(servers, ms)
		c, took, err := dialAttach(ms.sock)
		if err != nil {
			return sum, err
		}
		defer c.Close()
		if i == n-1 {
			sum.attachFirst = took
			c2, took2, err := dialAttach(ms.sock)
			if err != nil {
				return sum, err
			}
			c2.Close()
			sum.attachAgain = took2
		}
		if err := walkBase(ctx, c, files, dirs); err != nil {
			return sum, fmt.Errorf("server %d: %w", i, err)
		}
	}
	sum.took = time.Since(t0)
	for _, s := range servers {
		var p tenantsPoint
		if err := readMem(s, &p); err != nil {
			return sum, err
		}
		sum.rss += p.rss
		sum.heap += p.heap
	}
	return sum, nil
}

// dialAttach connects to sock, negotiates and attaches the root fid,
// returning how long that took.
func dialAttach(sock string) (*p9wire.Client, time.Duration, error) {
	t0 := time.Now()
	c, err := p9wire.Dial("unix", sock, 64<<10)
	if err != nil {
		return nil, 0, err
	}
	if _, err := c.Attach(rootFid, "root", "", 0); err != nil {
		c.Close()
		return nil, 0, fmt.Errorf("attach %s: %w", sock, err)
	}
	return c, time.Since(t0), nil
}

// walkBase lists every directory of the base (Tlopen + Treaddir to the
// end + Tclunk) and walks to every file (walkMany).
func walkBase(ctx context.Context, c *p9wire.Client, files, dirs int) error {
	s := &session{c: c}
	s.nextFid.Store(1 << 20) // clear of walkMany's fids
	for d := range dirs {
		f, err := s.walk(rootFid, memDirName(d))
		if err != nil {
			return fmt.Errorf("walk %s: %w", memDirName(d), err)
		}
		_, err = listDir(s, f)
		s.c.Clunk(f)
		if err != nil {
			return fmt.Errorf("list %s: %w", memDirName(d), err)
		}
	}
	return walkMany(ctx, c, 0, files)
}

// readMem fills p's heap (from the server) and RSS (from /proc).
func readMem(s *memServer, p *tenantsPoint) error {
	st, err := s.stat()
	if err != nil {
		return err
	}
	p.heap = st.heap
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid))
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return err
			}
			p.rss = kb << 10
			return nil
		}
	}
	return fmt.Errorf("no VmRSS in /proc/%d/status", s.pid)
}
