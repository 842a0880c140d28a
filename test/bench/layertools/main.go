// Command layertools measures `union9p export` and `union9p import` on an
// upper of many small files beside GNU tar's `tar c` and `tar x` of the
// same upper, in the same run, alternating the two so that both see the
// same machine load. It prints files/s and MB/s for each and the ratio
// union9p/tar (above 1: union9p is faster). Not a test: run it with
// `make bench-layers`.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"
)

func main() {
	bin := flag.String("union9p", "", "union9p binary (built by make)")
	files := flag.Int("files", 100_000, "files in the upper")
	rounds := flag.Int("rounds", 3, "timed rounds of each (median reported)")
	dir := flag.String("dir", "", "where the trees go (default: a temporary directory)")
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

	var exp, tarc, imp, tarx []time.Duration
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
		into1, into2 := filepath.Join(base, "imp"), filepath.Join(base, "x")
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
		for _, p := range []string{into1, into2, layer, tarball} {
			check(os.RemoveAll(p))
		}
	}
	mb := float64(bytes) / 1e6
	row := func(name string, d time.Duration) {
		s := d.Seconds()
		fmt.Printf("  %-16s %8.0f ms %10.0f files/s %8.1f MB/s\n", name, s*1000, float64(*files)/s, mb/s)
	}
	fmt.Printf("median of %d rounds (the machine is shared: expect noise)\n", *rounds)
	row("union9p export", median(exp))
	row("tar c", median(tarc))
	row("union9p import", median(imp))
	row("tar x", median(tarx))
	fmt.Printf("ratio union9p/tar (>1 faster): export %.2f, import %.2f (target >= 0.8)\n",
		median(tarc).Seconds()/median(exp).Seconds(), median(tarx).Seconds()/median(imp).Seconds())
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

func timed(name string, args ...string) time.Duration {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "layertools: %s %v: %v\n", name, args, err)
		os.Exit(1)
	}
	return time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "layertools:", err)
		os.Exit(1)
	}
}
