package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/union9p/union9p/qemu"
	"github.com/union9p/union9p/test/bench/guest/internal/record"
	"github.com/union9p/union9p/test/internal/vmhost"
)

// The sizes the benchmark issue asks for; smaller ones are reported as a
// scaled-down run.
const (
	issueFiles = 20000
	issueDDMiB = 256
)

// defaultFiles scales the tree down from issueFiles so that a run takes
// a few minutes: under software emulation with cache=mmap, tar x plus
// find | xargs stat cost about 0.1 s per file and round for the two sides
// together, so the issue's 20000 files would take about two hours.
const defaultFiles = 400

// guestMargin is how much sooner than the host the guest's watchdog fires,
// so that a hung guest still reports before the host gives up.
const guestMargin = 30 * time.Second

// config is the command line.
type config struct {
	Files    int
	DDMiB    int
	Rounds   int
	Cache    string
	Msize    int
	MemoryMB int
	CPUs     int
	Timeout  time.Duration
	Union9p  string // prebuilt static binary; empty: build ./cmd/union9p
	Dir      string // where the temporary directory goes
	Keep     bool
	Verbose  bool
}

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("guest", flag.ContinueOnError)
	var cfg config
	fs.IntVar(&cfg.Files, "files", defaultFiles, fmt.Sprintf("files in the tree that tar extracts and find | xargs stat walks (the issue: %d)", issueFiles))
	fs.IntVar(&cfg.DDMiB, "dd-mib", issueDDMiB, "MiB that dd writes and reads (the issue: 256)")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "alternating rounds (median reported)")
	fs.StringVar(&cfg.Cache, "cache", "mmap", "9p cache mode of both mounts: mmap or loose")
	// The kernel's virtio transport takes at most 4 KiB × 125 (Linux 6.1).
	fs.IntVar(&cfg.Msize, "msize", 512000, "9p msize asked for on both mounts")
	fs.IntVar(&cfg.MemoryMB, "m", 1024, "guest memory in MiB")
	fs.IntVar(&cfg.CPUs, "smp", 1, "guest vCPUs")
	fs.DurationVar(&cfg.Timeout, "timeout", 15*time.Minute, "stop the whole run after this long")
	fs.StringVar(&cfg.Union9p, "union9p", "", "static union9p binary to measure (default: build ./cmd/union9p)")
	fs.StringVar(&cfg.Dir, "dir", os.TempDir(), "directory for the temporary directory (the shares' filesystem)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the temporary directory (shares, image, console.log)")
	fs.BoolVar(&cfg.Verbose, "v", false, "show the guest's console on stderr")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./test/bench/guest [flags]\n\n"+
			"Times tar x, find | xargs stat and dd inside a QEMU guest on union9p and on QEMU's virtio-9p; needs root.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	case cfg.Files < 1 || cfg.DDMiB < 1 || cfg.Rounds < 1 || cfg.Msize < 4096 || cfg.MemoryMB < 256 || cfg.CPUs < 1:
		return cfg, errors.New("-files, -dd-mib, -rounds and -smp must be positive, -msize at least 4096, -m at least 256")
	case cfg.Cache != "mmap" && cfg.Cache != "loose":
		return cfg, fmt.Errorf("-cache %q: want mmap or loose", cfg.Cache)
	}
	return cfg, nil
}

// run is main with deferred cleanups (see doc.go).
func run(args []string, out io.Writer) int {
	cfg, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "guestbench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := bench(ctx, cfg, out); err != nil {
		fmt.Fprintln(os.Stderr, "guestbench:", err)
		return 1
	}
	return 0
}

// progress reports what is happening, on stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "guestbench: "+format+"\n", args...)
}

// bench prepares the shares and the image, boots the guest once and
// prints the report on out.
func bench(ctx context.Context, cfg config, out io.Writer) error {
	start := time.Now()
	if os.Geteuid() != 0 {
		return errors.New("must run as root (QEMU's passthrough export, owners in the layers)")
	}
	repo, err := vmhost.RepoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(cfg.Dir, "union9p-guestbench-")
	if err != nil {
		return err
	}
	if cfg.Keep {
		progress("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if err := vmhost.EnsureDeps(ctx, progress); err != nil {
		return err
	}
	k, err := vmhost.Kernel(ctx, progress)
	if err != nil {
		return err
	}
	progress("building union9p and the guest program")
	union9p, inguest, err := binaries(ctx, repo, dir, cfg.Union9p)
	if err != nil {
		return err
	}
	t := tree{Files: cfg.Files}
	progress("writing the content (%d files) into the lower and the plain directory, and as a tarball", t.Files)
	sh, err := newShares(filepath.Join(dir, "shares"), t)
	if err != nil {
		return err
	}
	tarball, err := t.Tarball()
	if err != nil {
		return err
	}
	deadline, _ := ctx.Deadline()
	initrd := filepath.Join(dir, "initrd.gz")
	if err := buildInitramfs(k, union9p, inguest, tarball, guestArgs(cfg, t, time.Until(deadline)-guestMargin), initrd); err != nil {
		return err
	}

	logFile, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	con := newConsole(logFile, cfg.Verbose)
	progress("booting %s; %d rounds of tar x, find | xargs stat, dd write, dd read on each side", k.Release, cfg.Rounds)
	bootStart := time.Now()
	bootErr := boot(ctx, union9p, qemu.Machine{Kernel: k.Image, Initrd: initrd, MemoryMB: cfg.MemoryMB, CPUs: cfg.CPUs}, sh, con)
	con.flush()
	guestTime := time.Since(bootStart)
	if bootErr != nil && ctx.Err() != nil {
		return bootErr // interrupted or timed out: the console tail says nothing new
	}
	results, info, err := con.outcome()
	if err != nil || bootErr != nil {
		return errors.Join(bootErr, err)
	}

	fmt.Fprintf(out, "union9p in-guest benchmark, %s\n", time.Now().Format(time.DateTime))
	fmt.Fprintln(out, environment(cfg, union9p, dir, info["guest-kernel"]))
	fmt.Fprintf(out, "method: one boot; %s = `union9p qemu` serving a union (lower = the content, empty upper) on a virtio-serial port, "+
		"mounted with `union9p guest-mount`; %s = QEMU's -virtfs local,security_model=passthrough of a plain directory with the same content, "+
		"mounted with trans=virtio; both with cache=%s,msize=%d; %d alternating rounds (A B, B A, ...), median; "+
		"guest caches dropped before every run; ratio = %s speed / %s speed (>1: union9p faster); noise = half the max-min spread of the rounds\n",
		record.SideUnion9p, record.SideQEMU, cfg.Cache, cfg.Msize, cfg.Rounds, record.SideUnion9p, record.SideQEMU)
	for _, s := range []string{record.SideUnion9p, record.SideQEMU} {
		fmt.Fprintf(out, "mount %s: %s\n", s, info["mount-"+s])
	}
	fmt.Fprintln(out, sizesNote(cfg))
	fmt.Fprintln(out)
	printTable(out, rows(results, cfg, t, len(tarball)))
	fmt.Fprintf(out, "\nrun time %v (guest %v)\n", time.Since(start).Round(time.Second), guestTime.Round(time.Second))
	return nil
}

// guestArgs is the guest program's command line (see inguest).
func guestArgs(cfg config, t tree, timeout time.Duration) string {
	return strings.Join([]string{
		"-rounds", fmt.Sprint(cfg.Rounds),
		"-tarball", guestTarball,
		"-tree", treeDir,
		"-entries", fmt.Sprint(t.Paths()),
		"-dd-mib", fmt.Sprint(cfg.DDMiB),
		"-cache", cfg.Cache,
		"-msize", fmt.Sprint(cfg.Msize),
		"-port", unionPort,
		"-tag", virtfsTag,
		"-timeout", max(timeout, time.Minute).String(),
	}, " ")
}

// sizesNote says whether the run used the issue's sizes.
func sizesNote(cfg config) string {
	if cfg.Files >= issueFiles && cfg.DDMiB >= issueDDMiB {
		return fmt.Sprintf("sizes: as the issue asks (%d files, dd %d MiB)", cfg.Files, cfg.DDMiB)
	}
	return fmt.Sprintf("sizes: SCALED DOWN to %d files and dd %d MiB, from the issue's %d files and %d MiB "+
		"(emulation is slow; -files %d -dd-mib %d run the issue's sizes, for about two hours)",
		cfg.Files, cfg.DDMiB, issueFiles, issueDDMiB, issueFiles, issueDDMiB)
}
