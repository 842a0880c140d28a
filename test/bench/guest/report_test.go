package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/union9p/union9p/test/bench/guest/internal/record"
)

func TestRowsAndRatio(t *testing.T) {
	var results []record.Result
	for round, secs := range [][2]float64{{4, 1}, {2, 1}, {3, 2}} {
		results = append(results,
			record.Result{Workload: record.WorkloadTar, Side: record.SideTCP, Round: round, Seconds: secs[0]},
			record.Result{Workload: record.WorkloadTar, Side: record.SideReference, Round: round, Seconds: secs[1]},
			record.Result{Workload: record.WorkloadDDRead, Side: record.SideReference, Round: round, Seconds: 1})
	}
	rs := rows(results, config{DDMiB: 8}, tree{Files: 10}, 1<<20)
	if len(rs) != len(record.Workloads) {
		t.Fatalf("%d rows, want one per workload", len(rs))
	}
	tar := rs[0]
	if median(tar.Secs[record.SideTCP]) != 3 || median(tar.Secs[record.SideReference]) != 1 {
		t.Errorf("medians %v", tar.Secs)
	}
	if r := tar.Ratio(record.SideTCP); r < 0.333 || r > 0.334 {
		t.Errorf("ratio %v, want 1/3 (three times slower)", r)
	}
	if n := tar.Noise(record.SideReference); n != 0.5 { // (2-1)/1/2
		t.Errorf("noise %v, want 0.5", n)
	}
	if rs[3].Ratio(record.SideTCP) != 0 || rs[3].cell(rs[3].Secs[record.SideTCP]) != "-" {
		t.Errorf("a side without results must show no ratio and '-'")
	}
	var out bytes.Buffer
	printTable(&out, rs, []string{record.SideTCP, record.SideReference})
	if l := strings.Split(out.String(), "\n")[1]; !strings.Contains(l, "3.00s (3.3 files/s)") || !strings.Contains(l, " 0.33 ") {
		t.Errorf("table:\n%s", out.String())
	}
}
