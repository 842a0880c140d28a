// Package guestutil holds what the test programs that run inside a guest
// (test/vm/guest, test/bench/guest/inguest) both need: running commands and
// unmounting a 9p mount whose helper must then exit by itself.
package guestutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Command runs a program, folding its output into the error.
func Command(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// UnmountAndWait unmounts dir and, when helper is not empty, waits until no
// process whose command line has helper in it is left: a relay or server
// must exit by itself once the kernel drops the connection.
func UnmountAndWait(dir, helper string) error {
	if err := unix.Unmount(dir, 0); err != nil {
		return fmt.Errorf("umount %s: %w", dir, err)
	}
	if helper == "" {
		return nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := ProcessesWith(helper)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still running 5s after umount %s (pids %v)", helper, dir, pids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ProcessesWith lists the pids whose command line contains s (zombies
// excluded: their command line is empty).
func ProcessesWith(s string) []string {
	var pids []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(s)) {
			pids = append(pids, filepath.Base(d))
		}
	}
	return pids
}
