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
	"slices"
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

// defaultDDMiB scales dd down from issueDDMiB: the relay moves about
// 25 MiB/s under emulation.
const defaultDDMiB = 32

// allSides lists every side's key.
func allSides() []string {
	var keys []string
	for _, s := range record.Sides {
		keys = append(keys, s.Key)
	}
	return keys
}

// defaultSides are all sides. tcp-loose was once left out: its
// page-by-page writes stalled at 0.1 MiB/s over QEMU's user network, a
// delayed-ACK wait that the server's end now avoids (qemu/quickack.go).
func defaultSides() []string { return allSides() }

// defaultFiles scales the tree down from issueFiles so that a run takes
// a few minutes: under software emulation with cache=mmap, tar x plus
// find | xargs stat cost about 0.1 s per file and round for the two sides
// together, so the issue's 20000 files would take about two hours.
const defaultFiles = 100

// guestMargin is how much sooner than the host the guest's watchdog fires,
// so that a hung guest still reports before the host gives up.
const guestMargin = 30 * time.Second

// config is the command line.
type config struct {
	Files    int
	DDMiB    int
	Rounds   int
	Msize    int
	MemoryMB int
	CPUs     int
	Sides    []string
	Net      string // transport of the tcp sides: tcp (QEMU user network) or tap
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
	fs.IntVar(&cfg.DDMiB, "dd-mib", defaultDDMiB, fmt.Sprintf("MiB that dd writes and reads (the benchmark issue: %d)", issueDDMiB))
	sides := fs.String("sides", strings.Join(defaultSides(), ","), "comma-separated sides to measure (all: "+strings.Join(allSides(), ",")+")")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "alternating rounds (median reported)")
	fs.StringVar(&cfg.Net, "net", "tcp", "how the tcp sides reach the host: tcp (QEMU's user network, the default of union9p qemu) or tap (root: a tap in a private network namespace)")
	// The kernel's virtio transport takes at most 4 KiB × 125 (Linux 6.1).
	fs.IntVar(&cfg.Msize, "msize", 512000, "9p msize of the virtio-9p, relay and tcp-512k sides")
	fs.IntVar(&cfg.MemoryMB, "m", 1024, "guest memory in MiB")
	fs.IntVar(&cfg.CPUs, "smp", 1, "guest vCPUs")
	fs.DurationVar(&cfg.Timeout, "timeout", 45*time.Minute, "stop the whole run after this long (and report the rounds taken)")
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
	cfg.Sides = strings.Split(*sides, ",")
	if cfg.Net != "tcp" && cfg.Net != "tap" {
		return cfg, fmt.Errorf("-net %q: want tcp or tap", cfg.Net)
	}
	for _, sd := range cfg.Sides {
		if !slices.Contains(allSides(), sd) {
			return cfg, fmt.Errorf("-sides: unknown side %q (want some of %s)", sd, strings.Join(allSides(), ","))
		}
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	case cfg.Files < 1 || cfg.DDMiB < 1 || cfg.Rounds < 1 || cfg.Msize < 4096 || cfg.MemoryMB < 256 || cfg.CPUs < 1:
		return cfg, errors.New("-files, -dd-mib, -rounds and -smp must be positive, -msize at least 4096, -m at least 256")
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
	sh, err := newShares(filepath.Join(dir, "shares"), t, cfg.DDMiB)
	if err != nil {
		return err
	}
	if slices.Contains(cfg.Sides, record.SideFuseOverlayfs) {
		unmount, err := mountFuseOverlayfs(ctx, sh)
		if err != nil {
			return err
		}
		defer unmount()
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
	progress("booting %s; %d rounds of tar x, find | xargs stat, dd write, dd read, dd read of a lower file on each of %s", k.Release, cfg.Rounds, strings.Join(cfg.Sides, ", "))
	bootStart := time.Now()
	bootErr := boot(ctx, cfg.Net, union9p, qemu.Machine{Kernel: k.Image, Initrd: initrd, MemoryMB: cfg.MemoryMB, CPUs: cfg.CPUs}, sh, con)
	con.flush()
	guestTime := time.Since(bootStart)
	results, info, err := con.outcome()
	if bootErr != nil && ctx.Err() != nil {
		err = bootErr // interrupted or timed out: the console tail says nothing new
	} else if bootErr != nil {
		err = errors.Join(bootErr, err)
	}
	if err != nil && len(results) == 0 {
		return err
	}

	fmt.Fprintf(out, "union9p in-guest benchmark, %s\n", time.Now().Format(time.DateTime))
	if err != nil {
		fmt.Fprintf(out, "INCOMPLETE: the medians below are of the rounds taken before the run ended (%v)\n", strings.SplitN(err.Error(), "\n", 2)[0])
	}
	fmt.Fprintln(out, environment(cfg, union9p, dir, info["guest-kernel"]))
	fmt.Fprintf(out, "union9p qemu --transport %s,serial: the tcp sides reach the host over %s\n", cfg.Net, map[string]string{
		"tcp": "QEMU's user network (restrict=on)", "tap": "a tap device in a network namespace of their own (64 KiB MTU, offloads)"}[cfg.Net])
	fmt.Fprintf(out, "method: one boot; every side mounted at once; %d rounds, the sides alternating (A B C ..., then ... C B A), median; "+
		"guest caches dropped before every run; ratio = speed / %s's speed (>1: faster); noise = half the max-min spread of the rounds\n",
		cfg.Rounds, record.SideReference)
	for _, sd := range record.Sides {
		if slices.Contains(cfg.Sides, sd.Key) {
			fmt.Fprintf(out, "  %-13s %s\n  %13s mount: %s\n", sd.Key, sd.What, "", info["mount-"+sd.Key])
		}
	}
	fmt.Fprintln(out, sizesNote(cfg))
	printPackets(out, info, cfg.Sides)
	fmt.Fprintln(out)
	printTable(out, rows(results, cfg, t, len(tarball)), cfg.Sides)
	fmt.Fprintf(out, "\nrun time %v (guest %v)\n", time.Since(start).Round(time.Second), guestTime.Round(time.Second))
	return err
}

// printPackets prints the union NIC's frame counts of the first round
// of each tcp side (see inguest/packets.go) and the guest's CPU use and
// interrupts in the first round of every side (inguest/cpu.go).
func printPackets(out io.Writer, info map[string]string, sides []string) {
	for _, sd := range sides {
		for _, w := range record.Workloads {
			if n, ok := info["packets-"+sd+"-"+w]; ok {
				fmt.Fprintf(out, "frames on the union NIC, %s %s, round 1: %s\n", sd, w, n)
			}
			if n, ok := info["cpu-"+sd+"-"+w]; ok {
				fmt.Fprintf(out, "guest time, %s %s, round 1: %s\n", sd, w, n)
			}
		}
	}
}

// guestArgs is the guest program's command line (see inguest).
func guestArgs(cfg config, t tree, timeout time.Duration) string {
	return strings.Join([]string{
		"-rounds", fmt.Sprint(cfg.Rounds),
		"-tarball", guestTarball,
		"-tree", treeDir,
		"-entries", fmt.Sprint(t.Paths()),
		"-dd-mib", fmt.Sprint(cfg.DDMiB),
		"-msize", fmt.Sprint(cfg.Msize),
		"-sides", strings.Join(cfg.Sides, ","),
		"-union", unionName,
		"-splice-union", spliceName,
		"-virtfs-union", virtfsName,
		"-virtiofs-union", vioName,
		"-tag", virtfsTag,
		"-lower-file", lowerFile,
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
