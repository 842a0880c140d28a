package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/union9p/union9p/test/p9wire"
	"golang.org/x/sys/unix"
)

// Section "memory": what the server keeps. A server process (this
// program re-executed as the p9srv server, see memserver.go, so that its
// heap holds nothing of the client) serves a union whose lower has
// -memory-files distinct files; a client walks to each (one Twalk of two
// names, as Linux walks a path it has not cached, then Tclunk) and the
// server's live heap after a full GC is printed before, after 100,000 and
// after all walks. Then idle connections are opened and the server's
// goroutines per idle connection printed.
//
// Targets (issue 8): heap growth below 32 MB and not growing with the
// count; at most 2 goroutines per idle connection.

const (
	memoryHeapTarget       = 32 << 20
	memoryGoroutinesTarget = 2.0
	memoryFilesPerDir      = 1000
	memoryIdleConns        = 50
)

func sectionMemory(ctx context.Context, cl *cleanups, cfg config, dir string, out io.Writer) error {
	files := cfg.MemoryFiles
	lower := filepath.Join(dir, "lower")
	progress("memory: creating %d lower files", files)
	start := time.Now()
	if err := makeManyFiles(lower, files); err != nil {
		return err
	}
	progress("memory: created in %s", time.Since(start).Round(time.Second))
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	ms, err := startMemServer(cl, lower, upper, work, filepath.Join(dir, "mem.sock"))
	if err != nil {
		return err
	}
	c, err := p9wire.Dial("unix", ms.sock, 64<<10)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Attach(rootFid, "root", "", 0); err != nil {
		return err
	}
	base, err := ms.stat()
	if err != nil {
		return err
	}
	type point struct {
		walked int
		st     memStat
		took   time.Duration
	}
	var points []point
	checkpoints := []int{min(100_000, files), files}
	if files <= 100_000 {
		checkpoints = checkpoints[1:]
	}
	walked := 0
	t0 := time.Now()
	for _, upto := range checkpoints {
		progress("memory: walking and clunking files %d..%d", walked, upto)
		if err := walkMany(ctx, c, walked, upto); err != nil {
			return err
		}
		walked = upto
		st, err := ms.stat()
		if err != nil {
			return err
		}
		points = append(points, point{walked, st, time.Since(t0)})
	}

	// Idle connections: each did a burst of pipelined requests (so that
	// handler goroutines were started) and then waits.
	progress("memory: %d idle connections", memoryIdleConns)
	before, err := ms.stat()
	if err != nil {
		return err
	}
	var idle []net.Conn
	defer func() {
		for _, ic := range idle {
			ic.Close()
		}
	}()
	for range memoryIdleConns {
		ic, err := idleConn(ms.sock)
		if err != nil {
			return err
		}
		idle = append(idle, ic)
	}
	time.Sleep(300 * time.Millisecond)
	after, err := ms.stat()
	if err != nil {
		return err
	}
	perConn := float64(after.goroutines-before.goroutines) / memoryIdleConns

	fmt.Fprintf(out, "\n== server memory: walk+clunk of distinct lower files (one Twalk of 2 names + Tclunk each), live heap after GC\n")
	fmt.Fprintf(out, "%-12s %12s %12s %10s\n", "walked", "live heap", "growth", "time")
	fmt.Fprintf(out, "%-12d %9.1f MB %12s %10s\n", 0, mb(base.heap), "", "")
	worst := int64(0)
	for _, p := range points {
		g := int64(p.st.heap) - int64(base.heap)
		worst = max(worst, g)
		fmt.Fprintf(out, "%-12d %9.1f MB %9.1f MB %10s\n", p.walked, mb(p.st.heap), float64(g)/(1<<20), p.took.Round(time.Second))
	}
	verdict := "ok"
	if worst >= memoryHeapTarget {
		verdict = "MISS"
	}
	fmt.Fprintf(out, "target: growth < %d MB at every count: %s (largest growth %.1f MB)\n", memoryHeapTarget>>20, verdict, float64(worst)/(1<<20))
	if len(points) == 2 {
		fmt.Fprintf(out, "growth from %d to %d walks: %.1f MB\n", points[0].walked, points[1].walked,
			float64(int64(points[1].st.heap)-int64(points[0].st.heap))/(1<<20))
	}
	verdict = "ok"
	if perConn > memoryGoroutinesTarget {
		verdict = "MISS"
	}
	fmt.Fprintf(out, "\n== server goroutines per idle connection (%d connections, each after a burst of 16 pipelined requests)\n", memoryIdleConns)
	fmt.Fprintf(out, "goroutines %d -> %d: %.2f per connection; target <= %.0f: %s\n", before.goroutines, after.goroutines, perConn, memoryGoroutinesTarget, verdict)
	return nil
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

// makeManyFiles creates n empty files under dir, memoryFilesPerDir per
// subdirectory (dNNNN/fNNNN).
func makeManyFiles(dir string, n int) error {
	dirs := (n + memoryFilesPerDir - 1) / memoryFilesPerDir
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := w; d < dirs; d += 4 {
				dd := filepath.Join(dir, memDirName(d))
				if err := os.MkdirAll(dd, 0o755); err != nil {
					errs <- err
					return
				}
				for f := 0; f < memoryFilesPerDir && d*memoryFilesPerDir+f < n; f++ {
					if err := unix.Mknod(filepath.Join(dd, memFileName(f)), unix.S_IFREG|0o644, 0); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func memDirName(d int) string  { return fmt.Sprintf("d%04d", d) }
func memFileName(f int) string { return fmt.Sprintf("f%04d", f) }

// walkMany walks to files [from, to) and clunks each, from 8 goroutines
// sharing the connection.
func walkMany(ctx context.Context, c *p9wire.Client, from, to int) error {
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fid := uint32(1000 + w)
			for i := from + w; i < to; i += workers {
				if i%4096 == 0 && ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				if _, err := c.Walk(rootFid, fid, memDirName(i/memoryFilesPerDir), memFileName(i%memoryFilesPerDir)); err != nil {
					errs <- fmt.Errorf("walk to file %d: %w", i, err)
					return
				}
				if err := c.Clunk(fid); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// idleConn opens a raw connection, negotiates, attaches, sends a burst
// of 16 pipelined Tgetattr, reads the answers and leaves it idle.
func idleConn(sock string) (net.Conn, error) {
	nc, err := net.Dial("unix", sock)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (net.Conn, error) { nc.Close(); return nil, err }
	if err := p9wire.WriteFrame(nc, p9wire.Tversion, p9wire.NoTag, new(p9wire.Encoder).U32(65536).Str("9P2000.L").Bytes()); err != nil {
		return fail(err)
	}
	if _, err := p9wire.ReadFrame(nc, 1<<20); err != nil {
		return fail(err)
	}
	if err := p9wire.WriteFrame(nc, p9wire.Tattach, 0, new(p9wire.Encoder).U32(0).U32(p9wire.NoFid).Str("root").Str("").U32(0).Bytes()); err != nil {
		return fail(err)
	}
	if _, err := p9wire.ReadFrame(nc, 1<<20); err != nil {
		return fail(err)
	}
	var burst []byte
	for tag := range uint16(16) {
		burst = p9wire.AppendFrame(burst, p9wire.Tgetattr, tag, new(p9wire.Encoder).U32(0).U64(p9wire.GetattrBasic).Bytes())
	}
	if _, err := nc.Write(burst); err != nil {
		return fail(err)
	}
	for range 16 {
		if _, err := p9wire.ReadFrame(nc, 1<<20); err != nil {
			return fail(err)
		}
	}
	return nc, nil
}

// memServer is the server process of the memory section (and of the
// tenants section).
type memServer struct {
	pid  int
	sock string
	stop func() error // stops it now (and not again at cleanup)
	in   io.Writer
	out  *bufio.Reader
	mu   sync.Mutex
}

type memStat struct {
	heap       uint64
	goroutines int
}

func startMemServer(cl *cleanups, lower, upper, work, sock string) (*memServer, error) {
	return startStatServer(cl, memServerEnv, strings.Join([]string{lower, upper, work, sock}, "\n"), sock)
}

// startStatServer starts this program as a server that answers "stat" on
// stdin (memserver.go, tenantserver.go): env=spec selects which.
func startStatServer(cl *cleanups, env, spec, sock string) (*memServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe) // stopped by closing its stdin (cleanup), not killed
	cmd.Env = append(os.Environ(), env+"="+spec)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := cl.add("stop the server "+env, func() error {
		in.Close()
		return cmd.Wait()
	})
	ms := &memServer{pid: cmd.Process.Pid, sock: sock, in: in, out: bufio.NewReader(outp), stop: stop}
	line, err := ms.out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		return nil, fmt.Errorf("server %s: %q %v", env, line, err)
	}
	return ms, nil
}

// stat asks the server for its live heap after a full GC and its number
// of goroutines.
func (ms *memServer) stat() (memStat, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if _, err := io.WriteString(ms.in, "stat\n"); err != nil {
		return memStat{}, err
	}
	line, err := ms.out.ReadString('\n')
	if err != nil {
		return memStat{}, err
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		return memStat{}, fmt.Errorf("memory server said %q", line)
	}
	heap, err1 := strconv.ParseUint(f[0], 10, 64)
	g, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return memStat{}, fmt.Errorf("memory server said %q", line)
	}
	return memStat{heap: heap, goroutines: g}, nil
}
