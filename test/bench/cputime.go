package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// CPU time per unit, beside each rate: on this shared two-processor
// machine a rate ratio moves with the load, but CPU time per request and
// where it is spent do not, and they show how much of a case's time the
// server under test accounts for at all. The bench's own client (test/
// p9wire: a reader goroutine per connection handing frames to callers,
// a fresh buffer per frame) costs tens of microseconds per request, more
// than union9p does; where it does, a rate ratio says more about the
// client than about the server.

// cpuClock reads the CPU time of the server process pid (its threads'
// run time, from /proc/PID/task/*/schedstat, nanosecond precision) and
// of this process, the client (getrusage). A pid of 0 (a server in this
// process, as in bench_test.go) reads as zero.
type cpuClock struct{ pid int }

// cpuSample is one reading.
type cpuSample struct {
	server, client time.Duration
	ok             bool
}

func (c cpuClock) read() cpuSample {
	var s cpuSample
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return s
	}
	s.client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if c.pid <= 0 {
		return s
	}
	tasks, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(c.pid), "task", "*", "schedstat"))
	if err != nil || len(tasks) == 0 {
		return s
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return s
		}
		s.server += time.Duration(ns)
	}
	s.ok = true
	return s
}

// perUnit returns the server's and the client's CPU time between a and b
// divided by units (0 when not known).
func perUnit(a, b cpuSample, units float64) (server, client float64) {
	if units <= 0 {
		return 0, 0
	}
	if a.ok && b.ok {
		server = float64(b.server-a.server) / units
	}
	return server, float64(b.client-a.client) / units
}

// formatCPU prints CPU nanoseconds per unit: per operation, or per MiB
// for byte workloads.
func formatCPU(u unit, ns float64) string {
	if ns <= 0 {
		return "-"
	}
	if u == unitBytes {
		ns *= 1 << 20
	}
	switch {
	case ns >= 10e6:
		return strconv.FormatFloat(ns/1e6, 'f', 0, 64) + "ms"
	case ns >= 1e6:
		return strconv.FormatFloat(ns/1e6, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(ns/1e3, 'f', 0, 64) + "µs"
}
