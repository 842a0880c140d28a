// Command vmguest is the guest half of the VM suite (see test/vm): the
// initramfs's init runs it as root after loading the 9p modules. In one
// boot it runs the suite of checks on three mounts over identical layers:
//
//   - host: the union served by union9p on the host, mounted with
//     `union9p guest-mount host` over its default path, trans=tcp on the
//     guest's user network (access=client, posixacl: the guest kernel
//     checks permissions);
//   - hostuser: a second host union over the same lowers, mounted
//     through the virtio-serial relay (serial:union9p.hostuser) with
//     access=user, so that the server checks permissions;
//   - local: a union of guest-local layers mounted with
//     `mount -t union9p` (the mount.union9p helper, server in the guest);
//   - overlay: the guest kernel's overlayfs over the same guest-local
//     lowers, the reference.
//
// It prints one line per check ("PASS suite/check" or "FAIL suite/check:
// why"), a DIFF line for each check whose result differs from overlayfs's
// and for each difference between the trees left behind, and ends with
// "guest: N passed, M failed". For the host side it also writes the
// tree it saw to .vmtest/manifest inside the union, for the host to
// compare with what its own overlayfs shows of the layers.
package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// hangTimeout bounds one check or step. A request the server never answers
// blocks the guest for good; rather than let the host's overall timeout
// end the run without a word, the watchdog reports the hung check, prints
// the summary and powers the guest off (without sync, which would hang
// on the same mount).
const hangTimeout = 2 * time.Minute

func main() {
	if len(os.Args) == 4 && os.Args[1] == "lock-helper" {
		if err := holdLock(os.Args[2], os.Args[3]); err != nil {
			os.Exit(1)
		}
		return
	}
	if role := tenantRole(); role != "" {
		runTenantGuest(role) // the two-guest part (tenant.go)
		return
	}
	r := &runner{results: map[string]map[string]bool{}}
	start := time.Now()
	r.run()
	fmt.Printf("guest: suites took %v\n", time.Since(start).Round(time.Millisecond))
	r.mu.Lock()
	fmt.Printf("guest: %d passed, %d failed\n", r.passed, r.failed)
	r.mu.Unlock()
}

// runner runs checks and counts results.
type runner struct {
	mu             sync.Mutex // the watchdog may record while a check hangs
	passed, failed int
	// results[check][suite] is whether the check passed in the suite.
	results map[string]map[string]bool
}

// record prints and counts one result.
func (r *runner) record(suite, name string, ok bool, d time.Duration, msgs []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.results[name] == nil {
		r.results[name] = map[string]bool{}
	}
	r.results[name][suite] = ok
	if ok {
		r.passed++
		fmt.Printf("PASS %s/%s (%v)\n", suite, name, d.Round(time.Millisecond))
		return
	}
	r.failed++
	fmt.Printf("FAIL %s/%s: %s\n", suite, name, strings.Join(msgs, "; "))
}

// step runs one setup or teardown step as a check of its own; it returns
// whether it passed.
func (r *runner) step(suite, name string, f func() error) bool {
	defer r.watchdog(suite, name).Stop()
	start := time.Now()
	err := f()
	var msgs []string
	if err != nil {
		msgs = []string{err.Error()}
	}
	r.record(suite, name, err == nil, time.Since(start), msgs)
	return err == nil
}

// suite runs every check on the mount at root.
func (r *runner) suite(suite, root string) {
	for _, c := range checks {
		t := &T{root: root}
		start := time.Now()
		watchdog := r.watchdog(suite, c.name)
		func() {
			defer func() {
				if p := recover(); p != nil {
					if _, ok := p.(stopCheck); !ok {
						t.Errorf("panic: %v", p)
					}
				}
			}()
			c.run(t)
		}()
		watchdog.Stop()
		r.record(suite, c.name, !t.failed, time.Since(start), t.msgs)
	}
}

// watchdog arms the hang timer for one check or step.
func (r *runner) watchdog(suite, name string) *time.Timer {
	return time.AfterFunc(hangTimeout, func() {
		r.record(suite, name, false, hangTimeout, []string{fmt.Sprintf("hung for %v (a request never answered?); the rest of the suite did not run", hangTimeout)})
		r.mu.Lock()
		fmt.Printf("guest: %d passed, %d failed\n", r.passed, r.failed)
		r.mu.Unlock()
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	})
}

// skipSuite counts every check of a suite that could not run as failed,
// so that no check disappears silently.
func (r *runner) skipSuite(suite, why string) {
	for _, c := range checks {
		r.record(suite, c.name, false, 0, []string{"not run: " + why})
	}
}

// compare prints a DIFF line for each check whose result in suite differs
// from the reference suite's.
func (r *runner) compare(suite, reference string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range checks {
		res := r.results[c.name]
		got, ok1 := res[suite]
		want, ok2 := res[reference]
		if ok1 && ok2 && got != want {
			fmt.Printf("DIFF %s: %s %s, %s %s\n", c.name, suite, passFail(got), reference, passFail(want))
		}
	}
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
