package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Where the guest's time goes during a run: the vCPU's busy share and
// its interrupts, from /proc/stat. Under software emulation every
// instruction the guest runs is emulated, so a run during which the
// guest is busy nearly all the time is bound by the guest's own work
// (its TCP stack, copies, the 9p client); one during which it is mostly
// idle is waiting for the host (QEMU's device emulation, the server).

// cpuSample is the guest's CPU time (in USER_HZ ticks) and interrupt
// count at one moment.
type cpuSample struct {
	user, system, softirq, irq, idle, total uint64
	intr                                    uint64
}

// readCPU reads /proc/stat; ok is false if it cannot.
func readCPU() (s cpuSample, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 8 && f[0] == "cpu":
			// user nice system idle iowait irq softirq [steal ...]
			var v []uint64
			for _, x := range f[1:] {
				n, _ := strconv.ParseUint(x, 10, 64)
				v = append(v, n)
				s.total += n
			}
			s.user, s.system, s.idle, s.irq, s.softirq = v[0]+v[1], v[2], v[3]+v[4], v[5], v[6]
		case len(f) >= 2 && f[0] == "intr":
			s.intr, _ = strconv.ParseUint(f[1], 10, 64)
		}
	}
	return s, s.total > 0
}

// cpuNote formats what happened between a and b, for an info record.
func cpuNote(a, b cpuSample) string {
	total := float64(b.total - a.total)
	if total == 0 {
		return "no ticks"
	}
	pct := func(x, y uint64) float64 { return 100 * float64(y-x) / total }
	return fmt.Sprintf("guest CPU %.0f%% busy (user %.0f%%, system %.0f%%, irq+softirq %.0f%%), %d interrupts",
		100-pct(a.idle, b.idle), pct(a.user, b.user), pct(a.system, b.system), pct(a.irq+a.softirq, b.irq+b.softirq), b.intr-a.intr)
}
