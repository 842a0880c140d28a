package main

import (
	"fmt"
	"io"
)

// syscallTable collects syscalls per operation by workload key and server
// name, for the targets printed after the syscalls section.
type syscallTable map[string]map[string]float64

func (t syscallTable) add(workload, server string, perOp float64) {
	if t[workload] == nil {
		t[workload] = map[string]float64{}
	}
	t[workload][server] = perOp
}

// printTargets prints the syscall target of issue 8: no more syscalls per
// null request (Tstatfs) in union9p than in diod.
func (t syscallTable) printTargets(out io.Writer) {
	u, okU := t["null"]["union9p"]
	d, okD := t["null"]["diod"]
	if !okU || !okD {
		return
	}
	verdict := "ok"
	if u > d {
		verdict = "MISS"
	}
	fmt.Fprintf(out, "target: syscalls per null request, union9p %.1f <= diod %.1f: %s\n", u, d, verdict)
}
