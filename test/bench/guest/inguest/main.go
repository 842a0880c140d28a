// Command inguest is the guest half of the in-guest benchmark (see
// test/bench/guest): the initramfs's init runs it as root after loading
// the modules. It mounts every side (record.Sides) of the same content,
// the union served by union9p over each transport and the directory
// served by QEMU's own virtio-9p server, and times busybox workloads on
// each, alternating the order (A B C, then C B A, ...) for -rounds
// rounds:
//
//   - tar: tar x of the tarball in the initramfs into a new directory;
//   - stat: find TREE | xargs stat over the tree that both shares hold;
//   - ddwrite: dd of -dd-mib MiB from /dev/zero, bs=1M, conv=fsync;
//   - ddread: dd of that file to /dev/null, bs=1M;
//   - lowerread: dd of a file of the shared content (the union's lower),
//     bs=1M.
//
// The page cache is dropped (sync; echo 3 > /proc/sys/vm/drop_caches)
// before every timed run. Each figure is printed as soon as it is taken,
// as a record line (test/bench/guest/internal/record) on the console; the
// host computes medians and ratios. A watchdog powers the guest off after
// -timeout, so that a hung request cannot keep the guest alive.
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/union9p/union9p/test/bench/guest/internal/record"
	"golang.org/x/sys/unix"
)

// config is the command line, set by the host in the init script.
type config struct {
	Rounds      int
	Tarball     string // in the initramfs
	Tree        string // the content's directory, relative to each share's root
	Entries     int    // what find TREE must list on each share
	DDMiB       int
	Cache       string   // 9p cache mode for both mounts
	Msize       int      // 9p msize asked for on both mounts
	Sides       []string // record.Sides keys to measure
	Union       string   // the union's name (union9p qemu --name)
	SpliceUnion string   // the second union, for the splice relay's own port
	VirtfsUnion string   // the third union, on the virtfs transport
	VioUnion    string   // the fourth union, on the virtiofs transport
	Tag         string   // QEMU's virtfs mount tag; TAGloose and TAGlower are two more exports of the same directory
	LowerFile   string   // a file of the shared content, relative to each mount, for lowerread
	Timeout     time.Duration
}

func main() {
	var cfg config
	flag.IntVar(&cfg.Rounds, "rounds", 3, "rounds; each runs every workload once per side")
	flag.StringVar(&cfg.Tarball, "tarball", "/tree.tar", "tarball extracted by the tar workload")
	flag.StringVar(&cfg.Tree, "tree", "tree", "directory of the shared content, relative to each mount")
	flag.IntVar(&cfg.Entries, "entries", 0, "number of paths find must list under -tree (0: do not check)")
	flag.IntVar(&cfg.DDMiB, "dd-mib", 256, "MiB written and read by dd")
	flag.StringVar(&cfg.Cache, "cache", "mmap", "9p cache mode of both mounts")
	flag.IntVar(&cfg.Msize, "msize", 512000, "9p msize asked for on both mounts")
	sides := flag.String("sides", "tcp,qemu-9p", "comma-separated sides to measure (record.Sides)")
	flag.StringVar(&cfg.Union, "union", "bench", "name of the union9p union")
	flag.StringVar(&cfg.SpliceUnion, "splice-union", "splice", "name of the second union (the splice relay's port)")
	flag.StringVar(&cfg.VirtfsUnion, "virtfs-union", "vfs", "name of the third union (virtfs transport)")
	flag.StringVar(&cfg.VioUnion, "virtiofs-union", "vio", "name of the fourth union (virtiofs transport)")
	flag.StringVar(&cfg.Tag, "tag", "ref", "mount tag of QEMU's virtfs share")
	flag.StringVar(&cfg.LowerFile, "lower-file", "big", "file of the shared content read by lowerread")
	flag.DurationVar(&cfg.Timeout, "timeout", 20*time.Minute, "power off after this long")
	flag.Parse()
	cfg.Sides = strings.Split(*sides, ",")

	watchdog := time.AfterFunc(cfg.Timeout, func() {
		emit(record.FormatError(fmt.Sprintf("watchdog: still running after %v; powering off", cfg.Timeout)))
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	})
	defer watchdog.Stop()
	if err := run(cfg); err != nil {
		emit(record.FormatError(err.Error()))
		os.Exit(1)
	}
	emit(record.FormatDone())
}

// run mounts both sides, checks that they show the same content, runs the
// rounds and unmounts.
func run(cfg config) error {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		emit(record.FormatInfo("guest-kernel", unix.ByteSliceToString(uts.Release[:])))
	}
	var sides []*side
	for _, name := range cfg.Sides {
		s, err := newSide(cfg, name)
		if err != nil {
			return err
		}
		sides = append(sides, s)
	}
	for _, s := range sides {
		if err := s.mount(); err != nil {
			return fmt.Errorf("%s: mount: %w", s.name, err)
		}
		defer s.unmount()
		emit(record.FormatInfo("mount-"+s.name, s.mountInfo()))
	}
	for _, s := range sides {
		n, err := countEntries(s, cfg.Tree)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		emit(record.FormatInfo("entries-"+s.name, fmt.Sprint(n)))
		if cfg.Entries > 0 && n != cfg.Entries {
			return fmt.Errorf("%s: find lists %d paths under %s, want %d", s.name, n, cfg.Tree, cfg.Entries)
		}
	}
	for round := range cfg.Rounds {
		order := slices.Clone(sides)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, w := range workloads(cfg) {
			for _, s := range order {
				secs, err := w.measure(s, round)
				if err != nil {
					return fmt.Errorf("%s on %s, round %d: %w", w.key, s.name, round, err)
				}
				emit(record.FormatResult(record.Result{Workload: w.key, Side: s.name, Round: round, Seconds: secs}))
			}
		}
	}
	for _, s := range sides {
		if err := s.unmount(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// emit prints one record line on the console.
func emit(line string) { fmt.Println(line) }
