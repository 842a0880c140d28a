package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/union9p/union9p/test/bench/guest/internal/record"
)

// row is one workload's timed runs on every side.
type row struct {
	Label string
	Work  float64              // units one run does, for the rate
	Unit  string               // of the rate, e.g. "files/s"
	Secs  map[string][]float64 // side key -> seconds, one per round
}

// Ratio is side's speed over the reference side's: above 1, side is
// faster; 0 when either has no result.
func (r row) Ratio(side string) float64 {
	s, ref := median(r.Secs[side]), median(r.Secs[record.SideReference])
	if s == 0 || ref == 0 {
		return 0
	}
	return ref / s
}

// Noise is half the max-min spread of side's rounds relative to their
// median.
func (r row) Noise(side string) float64 { return spread(r.Secs[side]) / 2 }

// rows groups results by workload, in run order, labelled with what one
// run does.
func rows(results []record.Result, cfg config, t tree, tarballBytes int) []row {
	paths := float64(t.Paths())
	mib := float64(cfg.DDMiB)
	out := []row{
		{Label: fmt.Sprintf("tar x (%d files, %.0f MiB tarball)", t.Files, float64(tarballBytes)/(1<<20)), Work: float64(t.Files), Unit: "files/s"},
		{Label: fmt.Sprintf("find | xargs stat (%d paths)", t.Paths()), Work: paths, Unit: "paths/s"},
		{Label: fmt.Sprintf("dd write %d MiB, bs=1M, conv=fsync", cfg.DDMiB), Work: mib, Unit: "MiB/s"},
		{Label: fmt.Sprintf("dd read %d MiB just written, bs=1M", cfg.DDMiB), Work: mib, Unit: "MiB/s"},
		{Label: fmt.Sprintf("dd read %d MiB of the lower, bs=1M", cfg.DDMiB), Work: mib, Unit: "MiB/s"},
	}
	for i := range out {
		out[i].Secs = map[string][]float64{}
	}
	for _, r := range results {
		if i := slices.Index(record.Workloads, r.Workload); i >= 0 {
			out[i].Secs[r.Side] = append(out[i].Secs[r.Side], r.Seconds)
		}
	}
	return out
}

// printTable prints, per workload, one line per side: the median time
// and rate, the ratio to the reference side and the noise.
func printTable(w io.Writer, rs []row, sides []string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "case\tside\tmedian\tvs %s\tnoise\n", record.SideReference)
	for _, r := range rs {
		for i, s := range sides {
			label := ""
			if i == 0 {
				label = r.Label
			}
			ratio := "-"
			if x := r.Ratio(s); x > 0 {
				ratio = fmt.Sprintf("%.2f", x)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t±%.0f%%\n", label, s, r.cell(r.Secs[s]), ratio, 100*r.Noise(s))
		}
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
