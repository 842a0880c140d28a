package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/union9p/union9p/test/bench/guest/internal/record"
)

// row is one workload's timed runs on both sides.
type row struct {
	Label   string
	Work    float64 // units one run does, for the rate
	Unit    string  // of the rate, e.g. "files/s"
	Union9p []float64
	QEMU    []float64 // seconds, one per round
}

// Ratio is union9p's speed over QEMU's: above 1, union9p is faster.
func (r row) Ratio() float64 {
	u := median(r.Union9p)
	if u == 0 {
		return 0
	}
	return median(r.QEMU) / u
}

// Noise is half the max-min spread of the rounds relative to their
// median, the larger of the two sides.
func (r row) Noise() float64 { return max(spread(r.Union9p), spread(r.QEMU)) / 2 }

// rows groups results by workload, in run order, labelled with what one
// run does.
func rows(results []record.Result, cfg config, t tree, tarballBytes int) []row {
	paths := float64(t.Paths())
	mib := float64(cfg.DDMiB)
	out := []row{
		{Label: fmt.Sprintf("tar x (%d files, %.0f MiB tarball)", t.Files, float64(tarballBytes)/(1<<20)), Work: float64(t.Files), Unit: "files/s"},
		{Label: fmt.Sprintf("find | xargs stat (%d paths)", t.Paths()), Work: paths, Unit: "paths/s"},
		{Label: fmt.Sprintf("dd write %d MiB, bs=1M, conv=fsync", cfg.DDMiB), Work: mib, Unit: "MiB/s"},
		{Label: fmt.Sprintf("dd read %d MiB, bs=1M", cfg.DDMiB), Work: mib, Unit: "MiB/s"},
	}
	for _, r := range results {
		i := slices.Index(record.Workloads, r.Workload)
		if i < 0 {
			continue
		}
		switch r.Side {
		case record.SideUnion9p:
			out[i].Union9p = append(out[i].Union9p, r.Seconds)
		case record.SideQEMU:
			out[i].QEMU = append(out[i].QEMU, r.Seconds)
		}
	}
	return out
}

// printTable prints one line per workload: each side's median time and
// rate, their ratio and the noise.
func printTable(w io.Writer, rs []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "case\t%s\t%s\tratio\tnoise\n", record.SideUnion9p, record.SideQEMU)
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t±%.0f%%\n", r.Label, r.cell(r.Union9p), r.cell(r.QEMU), r.Ratio(), 100*r.Noise())
	}
	tw.Flush()
}

// cell formats one side's median as time and rate.
func (r row) cell(secs []float64) string {
	m := median(secs)
	if m == 0 {
		return "-"
	}
	rate := r.Work / m
	if rate >= 100 {
		return fmt.Sprintf("%.2fs (%.0f %s)", m, rate, r.Unit)
	}
	return fmt.Sprintf("%.2fs (%.1f %s)", m, rate, r.Unit)
}

// median of xs (0 for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread is (max-min)/median of xs.
func spread(xs []float64) float64 {
	m := median(xs)
	if m == 0 {
		return 0
	}
	return (slices.Max(xs) - slices.Min(xs)) / m
}
