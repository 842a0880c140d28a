// Command load holds many 9P connections on one union9p server for minutes
// (`make load`: 64 connections, 5 minutes, a unix socket on loopback) and
// prints, every 10 s, the operations done, unexpected errors, the server's
// open file descriptors (/proc/PID/fd) and live heap (logged by the server
// on SIGUSR1). It exits 1 on any unexpected error, or when the fd count or
// the live heap keeps growing after warm-up.
//
// Each connection runs a mixed workload in its own directory (create,
// write, read back and compare, rename, unlink, mkdir/rmdir, xattrs) and
// on shared lower files (walk+getattr, merged readdir in small chunks,
// copy-up by writing into a lower file), keeping its directory bounded.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/union9p/union9p/test/p9wire"
	"golang.org/x/sys/unix"
)

func main() {
	bin := flag.String("union9p", "./union9p", "union9p binary to serve with")
	conns := flag.Int("conns", 64, "connections")
	duration := flag.Duration("duration", 5*time.Minute, "how long the load runs")
	every := flag.Duration("every", 10*time.Second, "sampling interval")
	warmup := flag.Duration("warmup", time.Minute, "samples before this are not held to flatness")
	flag.Parse()
	os.Exit(run(*bin, *conns, *duration, *every, *warmup))
}

const lowerFiles = 400

func run(bin string, conns int, duration, every, warmup time.Duration) int {
	dir, err := os.MkdirTemp("", "union9p-load")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	lower, upper, work := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{filepath.Join(lower, "shared"), upper, work} {
		must(os.MkdirAll(d, 0o755))
	}
	for i := range lowerFiles {
		must(os.WriteFile(filepath.Join(lower, "shared", fmt.Sprintf("f%d", i)), bytes.Repeat([]byte{byte(i)}, 4096+i), 0o644))
	}
	sock := filepath.Join(dir, "sock")
	srv := exec.Command(bin, "serve", "--lower", lower, "--upper", upper, "--workdir", work, "--listen", "unix:"+sock)
	stderr, err := srv.StderrPipe()
	must(err)
	must(srv.Start())
	defer func() { srv.Process.Signal(unix.SIGTERM); srv.Wait() }()
	stats := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "msg=stats") {
				stats <- sc.Text()
			} else if strings.Contains(sc.Text(), "level=WARN") || strings.Contains(sc.Text(), "level=ERROR") {
				fmt.Println("server:", sc.Text())
			}
		}
	}()
	for i := 0; ; i++ {
		if c, err := p9wire.Dial("unix", sock, 8192); err == nil {
			c.Close()
			break
		}
		if i > 1000 {
			fmt.Fprintln(os.Stderr, "load: server did not start")
			return 1
		}
		time.Sleep(10 * time.Millisecond)
	}

	var ops, errs atomic.Int64
	var errMu sync.Mutex
	var firstErrs []string
	report := func(what string, err error) {
		errs.Add(1)
		errMu.Lock()
		if len(firstErrs) < 10 {
			firstErrs = append(firstErrs, what+": "+err.Error())
		}
		errMu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range conns {
		c, err := p9wire.Dial("unix", sock, 1<<17)
		if err != nil {
			fmt.Fprintln(os.Stderr, "load: dial:", err)
			return 1
		}
		w := &conn{c: c, id: i, rnd: rand.New(rand.NewPCG(uint64(i), 42)), next: 1, ops: &ops, report: report}
		wg.Add(1)
		go func() { defer wg.Done(); defer c.Close(); w.run(stop) }()
	}

	fmt.Printf("load: %d connections for %v on %s (server pid %d)\n", conns, duration, sock, srv.Process.Pid)
	var fds, heaps []int64
	start := time.Now()
	tick := time.NewTicker(every)
	for now := range tick.C {
		srv.Process.Signal(unix.SIGUSR1)
		heap, gor := int64(-1), int64(-1)
		select {
		case line := <-stats:
			heap, gor = field(line, "heap_live_bytes"), field(line, "goroutines")
		case <-time.After(5 * time.Second):
		}
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", srv.Process.Pid))
		el := now.Sub(start)
		fmt.Printf("t=%3.0fs ops=%d (%.0f/s) unexpected_errors=%d server_fds=%d heap_live=%.1fMiB goroutines=%d\n",
			el.Seconds(), ops.Load(), float64(ops.Load())/el.Seconds(), errs.Load(), len(ents), float64(heap)/(1<<20), gor)
		if el >= warmup {
			fds, heaps = append(fds, int64(len(ents))), append(heaps, heap)
		}
		if el >= duration {
			break
		}
	}
	tick.Stop()
	close(stop)
	wg.Wait()

	code := 0
	if n := errs.Load(); n > 0 {
		fmt.Printf("FAIL: %d unexpected errors, first: %q\n", n, firstErrs)
		code = 1
	}
	if grows(fds, 1.1, 16) {
		fmt.Printf("FAIL: server fds grow after warm-up: %v\n", fds)
		code = 1
	}
	if grows(heaps, 1.5, 8<<20) {
		fmt.Printf("FAIL: server live heap grows after warm-up: %v\n", heaps)
		code = 1
	}
	if code == 0 {
		fmt.Printf("load: PASS: %d operations, 0 unexpected errors; fds and live heap flat after %v (fds %d..%d, heap %.1f..%.1f MiB)\n",
			ops.Load(), warmup, minOf(fds), maxOf(fds), float64(minOf(heaps))/(1<<20), float64(maxOf(heaps))/(1<<20))
	}
	return code
}

// grows: the last third of the samples is above the first third by more
// than factor and slack.
func grows(s []int64, factor float64, slack int64) bool {
	if len(s) < 3 {
		return false
	}
	third := len(s) / 3
	early, late := maxOf(s[:third]), minOf(s[len(s)-third:])
	return float64(late) > float64(early)*factor && late-early > slack
}

func minOf(s []int64) int64 {
	m := int64(1 << 62)
	for _, v := range s {
		m = min(m, v)
	}
	return m
}

func maxOf(s []int64) int64 {
	m := int64(-1 << 62)
	for _, v := range s {
		m = max(m, v)
	}
	return m
}

var fieldRE = map[string]*regexp.Regexp{}

func field(line, name string) int64 {
	re, ok := fieldRE[name]
	if !ok {
		re = regexp.MustCompile(name + `=(\d+)`)
		fieldRE[name] = re
	}
	m := re.FindStringSubmatch(line)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	return v
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}
