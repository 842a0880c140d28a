package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// syscallCount is what strace -c counted in a server while a fixed number
// of operations ran.
type syscallCount struct {
	Total  int
	ByName map[string]int
}

// PerOp returns calls per operation.
func (c syscallCount) PerOp(n int) float64 { return float64(c.Total) / float64(n) }

// Top returns the n most frequent syscalls as "name×perOp" strings.
func (c syscallCount) Top(n, ops int) string {
	names := make([]string, 0, len(c.ByName))
	for k := range c.ByName {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		if d := c.ByName[b] - c.ByName[a]; d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range names[:min(n, len(names))] {
		parts = append(parts, fmt.Sprintf("%s %.1f", k, float64(c.ByName[k])/float64(ops)))
	}
	return strings.Join(parts, ", ")
}

// countSyscalls sets w up on one session to srv, attaches strace -c -f to
// the server process, runs n operations, detaches and returns the counts.
// Setup and teardown are outside the traced window.
func countSyscalls(ctx context.Context, srv *server, w workload, n int, dir string) (syscallCount, error) {
	s, err := openSession(srv, w.Msize)
	if err != nil {
		return syscallCount{}, err
	}
	defer s.close()
	op, teardown, err := w.Setup(s, fmt.Sprintf("strace-%s-%d", srv.Name, time.Now().UnixNano()))
	if err != nil {
		return syscallCount{}, err
	}
	defer teardown()
	if _, err := op(); err != nil { // warm: first-use allocations, caches
		return syscallCount{}, err
	}

	out := filepath.Join(dir, "strace.out")
	os.Remove(out)
	cmd := exec.CommandContext(ctx, "strace", "-c", "-f", "-o", out, "-p", strconv.Itoa(srv.Pid()))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return syscallCount{}, err
	}
	if err := cmd.Start(); err != nil {
		return syscallCount{}, fmt.Errorf("strace: %w", err)
	}
	// strace reports each thread it attaches to; attaching is done when it
	// has been quiet for a moment.
	attached := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		lines := make(chan struct{})
		go func() {
			for sc.Scan() {
				lines <- struct{}{}
			}
			close(lines)
		}()
		for {
			select {
			case _, ok := <-lines:
				if !ok {
					close(attached)
					return
				}
			case <-time.After(300 * time.Millisecond):
				close(attached)
				for range lines {
				}
				return
			}
		}
	}()
	<-attached
	for range n {
		if _, err := op(); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return syscallCount{}, err
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait() // strace stops on SIGINT; a missing summary is reported below
	return parseStraceSummary(out)
}

// parseStraceSummary reads the table strace -c writes:
//
//	% time     seconds  usecs/call     calls    errors syscall
//	------ ----------- ----------- --------- --------- ----------------
//	 52.10    0.001234          12       100         3 read
//	...
//	100.00    0.002000           9       220        10 total
func parseStraceSummary(path string) (syscallCount, error) {
	f, err := os.Open(path)
	if err != nil {
		return syscallCount{}, fmt.Errorf("strace summary: %w", err)
	}
	defer f.Close()
	c := syscallCount{ByName: map[string]int{}}
	sc := bufio.NewScanner(f)
	seenTotal := false
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || strings.HasPrefix(fields[0], "%") || strings.HasPrefix(fields[0], "-") {
			continue
		}
		calls, err := strconv.Atoi(fields[3])
		if err != nil {
			continue
		}
		name := fields[len(fields)-1]
		if name == "total" {
			c.Total = calls
			seenTotal = true
			continue
		}
		c.ByName[name] = calls
	}
	if !seenTotal {
		return c, fmt.Errorf("strace summary %s: no total line", path)
	}
	return c, nil
}
