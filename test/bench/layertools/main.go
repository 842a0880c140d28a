// Command layertools measures `union9p export` and `union9p import` on an
// upper of many small files beside GNU tar's `tar c` and `tar x` of the
// same upper, in the same run, alternating the two so that both see the
// same machine load. It prints files/s and MB/s for each and the ratio
// union9p/tar (above 1: union9p is faster). Because the ratio is noisy on
// a shared machine, it also prints each side's CPU time per file (user +
// system, from the child's rusage, median of the rounds) and, from one more
// untimed run of each under `perf stat`, system calls per file. Not a
// test: run it with `make bench-layers`.
//
// The trees every round unpacks are kept until the run ends. On ext4
// without a journal (the root filesystem of the machines this runs on)
// the inode allocator passes over every inode freed in the last minutes
// on each create (find_inode_bit, recently_deleted): removing a round's
// 200,000 unpacked files before the next round made most of that round's
// time, import's and tar's alike, a walk past them (56% of import's by
// perf), larger for whichever went first. Neither tool's own cost. For
// the same reason each timed run starts after a sync (timed).
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("union9p", "", "union9p binary (built by make)")
	files := flag.Int("files", 100_000, "files in the upper")
	rounds := flag.Int("rounds", 3, "timed rounds of each (median reported)")
	dir := flag.String("dir", "", "where the trees go (default: a temporary directory)")
	syscalls := flag.Bool("syscalls", true, "count system calls per file in one more untimed run of each, with perf stat")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "layertools: give -union9p BINARY")
		os.Exit(2)
	}
	base, err := os.MkdirTemp(*dir, "union9p-bench-layers-")
	check(err)
	defer os.RemoveAll(base)

	upper := filepath.Join(base, "upper")
	bytes := makeUpper(upper, *files)
	fmt.Printf("upper: %d files in %d directories, %.1f MB (%s)\n", *files, *files/1000, float64(bytes)/1e6, base)

	var exp, tarc, imp, tarx []run
	for r := 0; r < *rounds; r++ {
		layer, tarball := filepath.Join(base, "layer.tar"), filepath.Join(base, "tar.tar")
		// Alternate which goes first, so neither always meets a cold cache.
		order := []func(){
			func() { exp = append(exp, timed(*bin, "export", "--quiet", "--upper", upper, "-o", layer)) },
			func() { tarc = append(tarc, timed("tar", "-C", upper, "-cf", tarball, ".")) },
		}
		if r%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, f := range order {
			f()
		}
		into1, into2 := filepath.Join(base, fmt.Sprint("imp", r)), filepath.Join(base, fmt.Sprint("x", r))
		check(os.Mkdir(into2, 0o755))
		order = []func(){
			func() { imp = append(imp, timed(*bin, "import", "--quiet", layer, into1)) },
			func() { tarx = append(tarx, timed("tar", "-C", into2, "-xf", tarball)) },
		}
		if r%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, f := range order {
			f()
		}
		for _, p := range []string{layer, tarball} {
			check(os.Remove(p))
		}
	}
	mb := float64(bytes) / 1e6
	row := func(name string, rs []run) {
		s := median(rs, run.wall).Seconds()
		fmt.Printf("  %-16s %8.0f ms %10.0f files/s %8.1f MB/s %8.1f µs CPU/file\n", name, s*1000, float64(*files)/s, mb/s,
			float64(median(rs, run.cpu).Microseconds())/float64(*files))
	}
	fmt.Printf("median of %d rounds (the machine is shared: expect noise)\n", *rounds)
	row("union9p export", exp)
	row("tar c", tarc)
	row("union9p import", imp)
	row("tar x", tarx)
	ratio := func(tar, ours []run, f func(run) time.Duration) float64 {
		return median(tar, f).Seconds() / median(ours, f).Seconds()
	}
	fmt.Printf("ratio union9p/tar (>1 faster): export %.2f, import %.2f (target >= 0.8)\n",
		ratio(tarc, exp, run.wall), ratio(tarx, imp, run.wall))
	fmt.Printf("CPU time ratio tar/union9p (>1 union9p uses less): export %.2f, import %.2f\n",
		ratio(tarc, exp, run.cpu), ratio(tarx, imp, run.cpu))
	if *syscalls {
		countSyscalls(base, upper, *bin, *files)
	}
}

// countSyscalls runs each side once more, untimed, under perf stat and
// prints its system calls per file.
func countSyscalls(base, upper, bin string, files int) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		fmt.Println("system calls per file: not counted (no perf)")
		return
	}
	layer, tarball := filepath.Join(base, "layer.tar"), filepath.Join(base, "tar.tar")
	into1, into2 := filepath.Join(base, "imp"), filepath.Join(base, "x")
	check(os.Mkdir(into2, 0o755))
	fmt.Println("system calls per file (one untimed run each, perf stat):")
	for _, c := range []struct {
		name string
		argv []string
	}{
		{"union9p export", []string{bin, "export", "--quiet", "--upper", upper, "-o", layer}},
		{"tar c", []string{"tar", "-C", upper, "-cf", tarball, "."}},
		{"union9p import", []string{bin, "import", "--quiet", layer, into1}},
		{"tar x", []string{"tar", "-C", into2, "-xf", tarball}},
	} {
		out, err := exec.Command(perf, append([]string{"stat", "-x,", "-e", "raw_syscalls:sys_enter", "--"}, c.argv...)...).CombinedOutput()
		n, ok := perfCount(string(out), "raw_syscalls:sys_enter")
		if err != nil || !ok {
			fmt.Printf("  %-16s not counted (perf stat: %v)\n", c.name, err)
			continue
		}
		fmt.Printf("  %-16s %6.2f\n", c.name, n/float64(files))
	}
	for _, p := range []string{into1, into2, layer, tarball} {
		check(os.RemoveAll(p))
	}
}

// perfCount finds the count of event in perf stat's -x, output.
func perfCount(out, event string) (float64, bool) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, ",")
		if len(f) > 2 && f[2] == event {
			n, err := strconv.ParseFloat(f[0], 64)
			return n, err == nil
		}
	}
	return 0, false
}

// makeUpper writes n files of 0 to 8 KiB in directories of 1000, a few of
// them whiteouts-free hard links, and returns the data size.
func makeUpper(dir string, n int) int64 {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 8192)
	for i := range buf {
		buf[i] = byte(rng.IntN(256))
	}
	var total int64
	for i := 0; i < n; i++ {
		d := filepath.Join(dir, fmt.Sprintf("d%03d", i/1000))
		if i%1000 == 0 {
			check(os.MkdirAll(d, 0o755))
		}
		size := rng.IntN(len(buf) + 1)
		check(os.WriteFile(filepath.Join(d, fmt.Sprintf("f%04d", i%1000)), buf[:size], 0o644))
		total += int64(size)
	}
	return total
}

// run is one timed run: its wall time and its CPU time (user + system).
type run struct{ wallTime, cpuTime time.Duration }

func (r run) wall() time.Duration { return r.wallTime }
func (r run) cpu() time.Duration  { return r.cpuTime }

// timed runs one side, after a sync: the data the run before it left
// dirty is written back before the clock starts, not during this run.
func timed(name string, args ...string) run {
	syscall.Sync()
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "layertools: %s %v: %v\n", name, args, err)
		os.Exit(1)
	}
	wall := time.Since(start)
	return run{wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
}

// median is the median of f over rs.
func median(rs []run, f func(run) time.Duration) time.Duration {
	s := make([]time.Duration, len(rs))
	for i, r := range rs {
		s[i] = f(r)
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "layertools:", err)
		os.Exit(1)
	}
}
