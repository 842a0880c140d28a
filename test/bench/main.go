package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() { os.Exit(run()) }

// config is the command line.
type config struct {
	Plan         plan
	Conns        []int
	Sections     map[string]bool
	Union9p      string // prebuilt binary; empty: build cmd/union9p
	Dir          string // where the temporary trees go
	CopyUpSize   int64
	CopyUpRounds int
	XFS          bool
	ChownJournal bool
	StraceOps    int
	MemoryFiles  int
	// The tenants section (tenants.go).
	TenantFiles   int
	TenantCounts  []int
	TenantServers int
	Timeout       time.Duration
	Keep          bool

	// CreateJournal: the create case also on a journaled ext4 image.
	CreateJournal bool
}

// sectionNames lists the parts of a run, in order.
var sectionNames = []string{"servers", "layers", "deep", "copyup", "chown", "syscalls", "memory"}

// extraSections are run only when -sections names them (make
// bench-tenants): they take long.
var extraSections = []string{"tenants"}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var cfg config
	fs.IntVar(&cfg.Plan.Rounds, "rounds", 5, "timed rounds per server and case (median reported)")
	fs.DurationVar(&cfg.Plan.Duration, "duration", 300*time.Millisecond, "length of one timed round")
	fs.DurationVar(&cfg.Plan.Warmup, "warmup", 100*time.Millisecond, "untimed round per server before each case")
	conns := fs.String("conns", "1,4", "parallel connections, comma-separated")
	sections := fs.String("sections", strings.Join(sectionNames, ","), "what to run: "+strings.Join(append(sectionNames, extraSections...), ","))
	fs.StringVar(&cfg.Union9p, "union9p", "", "union9p binary to measure (default: go build ./cmd/union9p)")
	fs.StringVar(&cfg.Dir, "dir", os.TempDir(), "directory for the temporary trees (its filesystem is the one measured)")
	sizeMiB := fs.Int64("copyup-mib", 1024, "size of the copied-up file in MiB")
	fs.IntVar(&cfg.CopyUpRounds, "copyup-rounds", 5, "copy-up rounds per side and filesystem")
	fs.BoolVar(&cfg.XFS, "xfs", true, "also measure copy-up on a reflink XFS loop image")
	fs.BoolVar(&cfg.ChownJournal, "chown-journal", true, "also measure chown -R on a journaled ext4 loop image")
	fs.BoolVar(&cfg.CreateJournal, "create-journal", true, "also measure create+write (servers section) on a journaled ext4 loop image")
	fs.IntVar(&cfg.StraceOps, "strace-ops", 500, "operations per workload counted under strace")
	fs.IntVar(&cfg.MemoryFiles, "memory-files", 1_000_000, "distinct lower files walked by the memory section")
	fs.IntVar(&cfg.TenantFiles, "tenants-files", 100_000, "lower files every tenant walks in the tenants section")
	tenantCounts := fs.String("tenants-counts", "1,10,100", "tenants of the one server in the tenants section, comma-separated")
	fs.IntVar(&cfg.TenantServers, "tenants-servers", 100, "separate servers measured beside it")
	fs.DurationVar(&cfg.Timeout, "timeout", 25*time.Minute, "stop the whole run after this long")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the temporary directory (server logs) after the run")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./test/bench [flags]\n\n"+
			"Measures union9p against diod and the kernel's overlayfs; needs root, diod, strace, xfsprogs.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	for _, f := range strings.Split(*conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return cfg, fmt.Errorf("-conns: bad count %q", f)
		}
		cfg.Conns = append(cfg.Conns, n)
	}
	cfg.Sections = map[string]bool{}
	for _, s := range strings.Split(*sections, ",") {
		s = strings.TrimSpace(s)
		if !contains(sectionNames, s) && !contains(extraSections, s) {
			return cfg, fmt.Errorf("-sections: unknown section %q", s)
		}
		cfg.Sections[s] = true
	}
	for _, f := range strings.Split(*tenantCounts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 999 {
			return cfg, fmt.Errorf("-tenants-counts: bad count %q (1 to 999)", f)
		}
		cfg.TenantCounts = append(cfg.TenantCounts, n)
	}
	if cfg.TenantFiles < 1 || cfg.TenantServers < 1 || cfg.TenantServers > 999 {
		return cfg, fmt.Errorf("-tenants-files and -tenants-servers must be positive (servers at most 999)")
	}
	if cfg.Plan.Rounds < 1 || cfg.Plan.Duration <= 0 || cfg.CopyUpRounds < 1 || *sizeMiB < 1 {
		return cfg, fmt.Errorf("rounds, duration and sizes must be positive")
	}
	cfg.CopyUpSize = *sizeMiB << 20
	return cfg, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// run is main with deferred cleanups: servers stopped, mounts and loop
// devices released, temporary trees removed, on success, error or signal.
func run() int {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	var cl cleanups
	defer cl.run()
	ctx, stop := withSignals(context.Background(), &cl)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := bench(ctx, &cl, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

// progress reports what is being measured, on stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func bench(ctx context.Context, cl *cleanups, cfg config, out io.Writer) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("must run as root (overlayfs and loop mounts, whiteouts, diod as any uid)")
	}
	tmp, err := os.MkdirTemp(cfg.Dir, "union9p-bench-")
	if err != nil {
		return err
	}
	if cfg.Keep {
		progress("keeping %s", tmp)
	} else {
		cl.add("remove "+tmp, func() error {
			if err := removeTree(tmp); err != nil {
				return err
			}
			return markFreed(cfg.Dir) // journal.go
		})
	}
	binary := cfg.Union9p
	if binary == "" {
		progress("building cmd/union9p")
		if binary, err = buildUnion9p(ctx, tmp); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "union9p benchmarks, %s\n", time.Now().Format(time.DateTime))
	fmt.Fprintln(out, environment(binary, tmp))
	printPlan(out, cfg.Plan)
	if err := settleFreed(ctx, cfg.Dir, out); err != nil {
		return err
	}
	// One journaled ext4 image for the sections that measure on one too.
	img := &journalImage{dir: filepath.Join(tmp, "ext4"), size: cfg.CopyUpSize*5 + (1 << 30)}

	var fx *serverFixture
	if cfg.Sections["servers"] || cfg.Sections["syscalls"] {
		progress("building trees (2 lowers + upper for union9p, one directory for diod)")
		if fx, err = startServerFixture(ctx, cl, binary, filepath.Join(tmp, "servers")); err != nil {
			return err
		}
	}
	if cfg.Sections["servers"] {
		if err := sectionServers(ctx, cfg, fx, out); err != nil {
			return err
		}
		if cfg.CreateJournal {
			if err := sectionCreateJournal(ctx, cl, cfg, binary, img, out); err != nil {
				return err
			}
		}
	}
	if cfg.Sections["layers"] {
		if err := sectionLayers(ctx, cl, cfg, binary, filepath.Join(tmp, "layers"), out); err != nil {
			return err
		}
	}
	if cfg.Sections["deep"] {
		if err := sectionDeep(ctx, cl, cfg, binary, filepath.Join(tmp, "deep"), out); err != nil {
			return err
		}
	}
	if cfg.Sections["copyup"] {
		if err := sectionCopyUp(ctx, cl, cfg, binary, filepath.Join(tmp, "copyup"), out); err != nil {
			return err
		}
	}
	if cfg.Sections["chown"] {
		if err := sectionChown(ctx, cl, cfg, binary, filepath.Join(tmp, "chown"), "the bench directory's filesystem", out); err != nil {
			return err
		}
		if cfg.ChownJournal {
			mnt, err := img.mount(ctx, cl)
			if err != nil {
				return err
			}
			if err := sectionChown(ctx, cl, cfg, binary, filepath.Join(mnt, "chown"), journalImageName, out); err != nil {
				return err
			}
		}
	}
	if cfg.Sections["syscalls"] {
		if err := sectionSyscalls(ctx, cfg, fx, filepath.Join(tmp, "servers"), out); err != nil {
			return err
		}
	}
	if cfg.Sections["memory"] {
		if err := sectionMemory(ctx, cl, cfg, filepath.Join(tmp, "memory"), out); err != nil {
			return err
		}
	}
	if cfg.Sections["tenants"] {
		if err := sectionTenants(ctx, cl, cfg, filepath.Join(tmp, "tenants"), out); err != nil {
			return err
		}
	}
	return nil
}

// removeTree deletes dir unless something is still mounted below it (a
// failed unmount), in which case deleting would reach into the mount.
func removeTree(dir string) error {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			return fmt.Errorf("not removing %s: %s is still mounted", dir, f[4])
		}
	}
	return os.RemoveAll(dir)
}

// syncAll flushes dirty data between phases so that writeback from one
// does not run during the next.
func syncAll() { unix.Sync() }
