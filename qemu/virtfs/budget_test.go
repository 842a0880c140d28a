package virtfs

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Listing a directory bigger than the budget (ls -l: READDIRPLUS, then
// a stat of each entry) makes the kernel forget what it knew, so the
// union's nodes (and their descriptors) stay bounded, and the mount
// keeps answering.
func TestKnownObjectsStayWithinBudget(t *testing.T) {
	testBudgetHigh = 500
	defer func() { testBudgetHigh = 0 }()
	files := map[string]string{"big/": ""}
	for i := range 4000 {
		files[fmt.Sprintf("big/f%05d", i)] = strconv.Itoa(i)
	}
	m := mountUnion(t, files)
	// Another process, as QEMU: /proc/PID/fd/N names this process's mount.
	root := strings.Replace(m.root, "self", strconv.Itoa(os.Getpid()), 1)
	out, err := exec.Command("sh", "-c", "ls -l "+root+"/big | grep -c ' f0'").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "4000" {
		t.Fatalf("ls -l big: %q %v, want 4000 entries", out, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for m.srv.budget.known.Load() > 2*testBudgetHigh || m.u.Live() > 2*int(testBudgetHigh) {
		if time.Now().After(deadline) {
			t.Fatalf("the kernel still knows %d objects (the union holds %d nodes), budget %d",
				m.srv.budget.known.Load(), m.u.Live(), testBudgetHigh)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if data, err := os.ReadFile(m.path("big/f03999")); err != nil || string(data) != "3999" {
		t.Errorf("big/f03999 after the sweep: %q %v", data, err)
	}
}
