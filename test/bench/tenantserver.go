package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/union9p/union9p/p9srv"
	"github.com/union9p/union9p/union/tenant"
)

// tenantServerEnv, when set (to the lower, the tenants directory, the
// socket directory and the number of tenants, separated by newlines),
// makes this program the server of the tenants section: one p9srv serving
// a tenants registry as `union9p serve --tenants` does, tenant tNNN on
// SOCKDIR/tNNN.sock. On stdin a line "stat" is answered on stdout with
// the live heap after a full GC and the number of goroutines (as the
// memory section's server). It ends when stdin closes.
const tenantServerEnv = "UNION9P_BENCH_TENANTSERVER"

func init() {
	if spec := os.Getenv(tenantServerEnv); spec != "" {
		os.Exit(runTenantServer(spec))
	}
}

func tenantName(i int) string { return fmt.Sprintf("t%03d", i) }

func runTenantServer(spec string) int {
	parts := strings.Split(spec, "\n")
	n, err := 0, error(nil)
	if len(parts) == 4 {
		n, err = strconv.Atoi(parts[3])
	}
	if len(parts) != 4 || err != nil {
		fmt.Fprintln(os.Stderr, "tenant server: bad spec")
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "tenant server:", err)
		return 1
	}
	reg, err := tenant.Open(tenant.Config{Dir: parts[1], Lowers: []string{parts[0]}})
	if err != nil {
		return fail(err)
	}
	defer reg.Close()
	ts := &p9srv.Tenants{Registry: reg}
	srv, err := p9srv.New(p9srv.Config{})
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range n {
		name := tenantName(i)
		if err := reg.Add(name); err != nil {
			return fail(err)
		}
		ln, err := p9srv.Listen("unix:" + filepath.Join(parts[2], name+".sock"))
		if err != nil {
			return fail(err)
		}
		go srv.ServeTenant(ctx, ln, ts, name)
	}
	answerStats()
	srv.Shutdown(context.Background())
	return 0
}
