package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// target is a goal for a ratio: the ratio must be at least Min.
type target struct {
	Min float64
}

func (t *target) verdict(ratio float64) string {
	if t == nil {
		return ""
	}
	mark := "ok"
	if ratio < t.Min {
		mark = "MISS"
	}
	return fmt.Sprintf("≥%.1f %s", t.Min, mark)
}

// serverTarget returns the goal for union9p/diod on w, if any.
//
// The targets are issue 8's: null request 2x diod; walk+getattr, create +
// write 4 KiB and readdir of the 10k merged directory 1.5x; sequential
// read at msize 1 MiB 3x and write 2x.
func serverTarget(w workload) *target {
	switch {
	case w.Key == "null":
		return &target{Min: 2.0}
	case w.Unit == unitOps:
		return &target{Min: 1.5}
	case w.Key == "seqread1m":
		return &target{Min: 3.0}
	case w.Key == "seqwrite1m":
		return &target{Min: 2.0}
	}
	return nil
}

// formatRate prints a rate in the workload's unit.
func formatRate(u unit, r float64) string {
	if u == unitBytes {
		return fmt.Sprintf("%.0f MiB/s", r/(1<<20))
	}
	switch {
	case r >= 10000:
		return fmt.Sprintf("%.1fk op/s", r/1000)
	case r >= 100:
		return fmt.Sprintf("%.0f op/s", r)
	default:
		return fmt.Sprintf("%.1f op/s", r)
	}
}

func formatSize(n uint32) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dK", n>>10)
	}
	return fmt.Sprint(n)
}

// printComparisons prints one table of A-vs-B figures. targetFor gives the
// goal of each row (nil: none).
func printComparisons(w io.Writer, aName, bName string, rows []comparison, targetFor func(comparison) *target) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "case\tconns\tmsize %s/%s\t%s\t%s\tratio\tnoise\ttarget\tserver CPU %s/%s\tclient CPU %s/%s\n",
		aName, bName, aName, bName, aName, bName, aName, bName)
	for _, c := range rows {
		u := c.Workload.Unit
		fmt.Fprintf(tw, "%s\t%d\t%s/%s\t%s\t%s\t%.2f\t±%.0f%%\t%s\t%s/%s\t%s/%s\n",
			c.Workload.Name, c.Conns, formatSize(c.A.Msize), formatSize(c.B.Msize),
			formatRate(u, c.A.Median()), formatRate(u, c.B.Median()),
			c.Ratio(), 50*max(c.A.Spread(), c.B.Spread()), targetFor(c).verdict(c.Ratio()),
			formatCPU(u, median(c.A.ServerCPU)), formatCPU(u, median(c.B.ServerCPU)),
			formatCPU(u, median(c.A.ClientCPU)), formatCPU(u, median(c.B.ClientCPU)))
	}
	tw.Flush()
	fmt.Fprintf(w, "CPU = median CPU time per operation (per MiB for sequential I/O): the server process's threads, and the bench's client\n")
}

// printPlan prints how the figures were taken.
func printPlan(w io.Writer, p plan) {
	fmt.Fprintf(w, "method: %d alternating rounds of %v per server and case (after a %v warm-up), median; "+
		"ratio = speed of the first over the second (>1: first faster); noise = half the max-min spread of the rounds\n",
		p.Rounds, p.Duration, p.Warmup)
}

// formatDuration rounds d for display.
func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}
