package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// killMarker is the file the guest creates in the virtiofs union to ask
// for its worker to be killed (test/vm/guest virtiofs_restart.go).
const killMarker = ".union9p-kill-worker"

// virtiofsWorkerKiller kills the virtiofs worker serving upper with
// SIGKILL each time the guest's kill marker appears in upper (once per
// appearance: the guest removes it through the new worker). wait stops
// watching and returns how many workers were killed and the pids.
func virtiofsWorkerKiller(ctx context.Context, upper string, logf func(string, ...any)) (wait func() []int) {
	done := make(chan []int, 1)
	go func() {
		var killed []int
		armed := true
		for {
			select {
			case <-ctx.Done():
				done <- killed
				return
			case <-time.After(50 * time.Millisecond):
			}
			_, err := os.Lstat(filepath.Join(upper, killMarker))
			if err != nil {
				armed = true
				continue
			}
			if !armed {
				continue
			}
			pids := virtiofsWorkers(upper)
			if len(pids) != 1 {
				logf("virtiofs worker of %s: %d processes %v, want 1", upper, len(pids), pids)
				continue
			}
			if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
				logf("kill virtiofs worker %d: %v", pids[0], err)
				continue
			}
			logf("killed the virtiofs worker (pid %d) as the guest asked", pids[0])
			killed = append(killed, pids[0])
			armed = false
		}
	}()
	return func() []int { return <-done }
}

// virtiofsWorkers lists the qemu-virtiofs-worker processes whose
// arguments name upper.
func virtiofsWorkers(upper string) []int {
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/cmdline")
		if err != nil {
			continue
		}
		args := bytes.Split(b, []byte{0})
		worker, ours := false, false
		for _, a := range args {
			worker = worker || string(a) == "qemu-virtiofs-worker"
			ours = ours || string(a) == upper
		}
		if worker && ours {
			if pid, err := strconv.Atoi(filepath.Base(d)); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// checkWorkersKilled is the host's side of the guest's restart checks:
// the guest asked twice, and each time exactly one worker was killed.
func checkWorkersKilled(killed []int) error {
	if len(killed) != 2 {
		return fmt.Errorf("killed %d virtiofs workers (pids %v), want 2 (the guest's worker-killed checks)", len(killed), killed)
	}
	return nil
}
