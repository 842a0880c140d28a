package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/union9p/union9p/test/bench/guest/internal/record"
	"golang.org/x/sys/unix"
)

// workload is one timed busybox command run on a side. prepare and
// finish run untimed before and after it (a nil one does nothing).
type workload struct {
	key     string
	prepare func(s *side, round int) error
	run     func(s *side, round int) error
	finish  func(s *side, round int) error
}

// workloads returns the workloads in run order (record.Workloads): dd
// read reads the file dd write wrote in the same round, then removes it.
func workloads(cfg config) []workload {
	// Several sides mount the same union: names carry the side.
	extractDir := func(s *side, round int) string { return filepath.Join(s.dir, fmt.Sprintf("%s-x%d", s.name, round)) }
	ddFile := func(s *side, round int) string { return filepath.Join(s.dir, fmt.Sprintf("%s-dd%d", s.name, round)) }
	ddBytes := int64(cfg.DDMiB) << 20
	return []workload{{
		key:     record.WorkloadTar,
		prepare: func(s *side, round int) error { return os.Mkdir(extractDir(s, round), 0o755) },
		run: func(s *side, round int) error {
			if err := shell(fmt.Sprintf("tar x -f %s -C %s", cfg.Tarball, extractDir(s, round))); err != nil {
				return err
			}
			return syncFS(s.dir) // what tar wrote is on the server
		},
	}, {
		key: record.WorkloadStat,
		run: func(s *side, _ int) error {
			return shell(fmt.Sprintf("set -o pipefail; find %s | xargs stat >/dev/null", filepath.Join(s.dir, cfg.Tree)))
		},
	}, {
		key: record.WorkloadDDWrite,
		run: func(s *side, round int) error {
			return shell(fmt.Sprintf("dd if=/dev/zero of=%s bs=1M count=%d conv=fsync", ddFile(s, round), cfg.DDMiB))
		},
		finish: func(s *side, round int) error {
			fi, err := os.Stat(ddFile(s, round))
			if err == nil && fi.Size() != ddBytes {
				err = fmt.Errorf("dd wrote %d bytes, want %d", fi.Size(), ddBytes)
			}
			return err
		},
	}, {
		key: record.WorkloadDDRead,
		run: func(s *side, round int) error {
			return shell(fmt.Sprintf("dd if=%s of=/dev/null bs=1M", ddFile(s, round)))
		},
		finish: func(s *side, round int) error { return os.Remove(ddFile(s, round)) },
	}, {
		key: record.WorkloadLowerRead,
		run: func(s *side, _ int) error {
			return shell(fmt.Sprintf("dd if=%s of=/dev/null bs=1M", filepath.Join(s.dir, cfg.LowerFile)))
		},
	}}
}

// measure runs w once on s with a cold page cache and returns how long
// the command took, in seconds.
func (w workload) measure(s *side, round int) (float64, error) {
	if w.prepare != nil {
		if err := w.prepare(s, round); err != nil {
			return 0, fmt.Errorf("prepare: %w", err)
		}
	}
	if err := dropCaches(); err != nil {
		return 0, err
	}
	tx0, rx0, nic := nicCounts()
	cpu0, cpuOK := readCPU()
	start := time.Now()
	err := w.run(s, round)
	secs := time.Since(start).Seconds()
	if err != nil {
		return 0, err
	}
	if cpu1, ok := readCPU(); ok && cpuOK && round == 0 {
		emit(record.FormatInfo(fmt.Sprintf("cpu-%s-%s", s.name, w.key), cpuNote(cpu0, cpu1)))
	}
	if tx1, rx1, _ := nicCounts(); nic && round == 0 && strings.HasPrefix(s.name, "tcp") {
		emit(record.FormatInfo(fmt.Sprintf("packets-%s-%s", s.name, w.key), packetNote(tx0, rx0, tx1, rx1)))
	}
	if w.finish != nil {
		if err := w.finish(s, round); err != nil {
			return 0, fmt.Errorf("after the run: %w", err)
		}
	}
	return secs, nil
}

// dropCaches writes back dirty data and empties the guest's page, dentry
// and inode caches, so that every run starts cold on the guest side.
func dropCaches() error {
	unix.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200); err != nil {
		return fmt.Errorf("drop caches: %w", err)
	}
	return nil
}

// syncFS flushes the file system holding dir (syncfs(2)).
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// shell runs a busybox sh script, folding its output into the error.
func shell(script string) error {
	out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", script, err, strings.TrimSpace(string(out)))
	}
	return nil
}
