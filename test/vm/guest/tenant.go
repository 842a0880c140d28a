package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/union9p/union9p/test/internal/guestutil"
	"golang.org/x/sys/unix"
)

// The two-guest part of the VM suite (test/vm/tenants.go): two guests
// booted with union9p.tenant=writer and union9p.tenant=reader on the
// kernel command line, each attached by `union9p qemu --tenant` to its
// own tenant of ONE host server over the same base. The host drives both
// through their consoles: a guest prints "TENANT <role> <STATE>" when it
// reaches a point and waits for a line on its console before going on.
// Results are "PASS tenant-<role>/<check>" or "FAIL ..." lines and a
// "guest: N passed, M failed" summary, as in the main suite.
//
// The base (made by the host): keep.txt, del.txt, dir/edit.txt.
const (
	tenantPort  = "t" // union9p qemu --name t --tenant ...
	tenantMount = "/mnt/t"
)

// tenantRole returns the role on the kernel command line, or "".
func tenantRole() string {
	b, _ := os.ReadFile("/proc/cmdline")
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "union9p.tenant="); ok {
			return v
		}
	}
	return ""
}

// tenantGuest is one guest's run.
type tenantGuest struct {
	role           string
	in             *bufio.Reader
	passed, failed int
}

func (g *tenantGuest) check(name string, err error) {
	if err != nil {
		g.failed++
		fmt.Printf("FAIL tenant-%s/%s: %v\n", g.role, name, err)
		return
	}
	g.passed++
	fmt.Printf("PASS tenant-%s/%s\n", g.role, name)
}

// state tells the host where the guest is and, with wait, waits for its
// go-ahead (a line on the console).
func (g *tenantGuest) state(s string, wait bool) {
	fmt.Printf("TENANT %s %s\n", g.role, s)
	if wait {
		if _, err := g.in.ReadString('\n'); err != nil {
			g.check("console-go-ahead", err)
		}
	}
}

func runTenantGuest(role string) {
	g := &tenantGuest{role: role, in: bufio.NewReader(os.Stdin)}
	// No step may hang the guest for good: the host's timeout would end
	// the run without a word.
	time.AfterFunc(4*time.Minute, func() {
		fmt.Printf("FAIL tenant-%s/hung: no progress for 4 minutes\nguest: %d passed, %d failed\n", role, g.passed, g.failed+1)
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	})
	if err := mountTenant(tenantMount); err != nil {
		g.check("guest-mount", err)
	} else {
		g.check("guest-mount", nil)
		switch role {
		case "writer":
			g.writer()
		case "reader":
			g.reader()
		default:
			g.check("role", fmt.Errorf("unknown role %q", role))
		}
	}
	fmt.Printf("guest: %d passed, %d failed\n", g.passed, g.failed)
}

func mountTenant(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return guestutil.Command("/bin/union9p", "guest-mount", tenantPort, dir)
}

// writer changes its tenant's view (a new file, a whiteout, a copy-up, a
// directory), waits while the host resets its tenant, then finds its
// connection ended, mounts again and sees the pristine base.
func (g *tenantGuest) writer() {
	m := tenantMount
	g.check("write-new-file", os.WriteFile(m+"/new.txt", []byte("writer's\n"), 0o644))
	g.check("delete-base-file", os.Remove(m+"/del.txt"))
	g.check("copy-up-base-file", os.WriteFile(m+"/dir/edit.txt", []byte("edited by writer\n"), 0o644))
	g.check("mkdir", os.Mkdir(m+"/newdir", 0o755))
	g.check("sees-own-changes", expectTree(m, map[string]string{
		"new.txt": "writer's\n", "del.txt": "", "dir/edit.txt": "edited by writer\n", "keep.txt": "base keep\n"}))
	g.state("WROTE", true) // the host resets this tenant now

	// The reset ended the connection: the old mount answers errors, at
	// once (no hang), and no longer shows the writes.
	_, err := os.ReadDir(m)
	if err == nil {
		err = errors.New("readdir of the old mount succeeded after the reset")
	} else {
		fmt.Printf("tenant-%s: the old mount after the reset: %v\n", g.role, err)
		err = nil
	}
	g.check("connection-ended-by-reset", err)
	g.check("unmount-old", unix.Unmount(m, unix.MNT_DETACH))
	m2 := "/mnt/t2"
	g.check("mount-again", mountTenant(m2))
	g.check("pristine-base-after-reset", expectTree(m2, map[string]string{
		"new.txt": "", "del.txt": "base del\n", "dir/edit.txt": "base edit\n", "keep.txt": "base keep\n", "newdir": ""}))
	g.state("DONE", false)
}

// reader writes a file of its own, then (when the host says the writer
// has written) checks that it sees none of the writer's changes, and
// (after the writer's tenant was reset) that its connection is intact.
func (g *tenantGuest) reader() {
	m := tenantMount
	g.check("write-own-file", os.WriteFile(m+"/reader.txt", []byte("reader's\n"), 0o644))
	g.state("READY", true) // the writer has written
	g.check("does-not-see-other-tenant", expectTree(m, map[string]string{
		"new.txt": "", "del.txt": "base del\n", "dir/edit.txt": "base edit\n", "newdir": "", "reader.txt": "reader's\n"}))
	g.state("CHECKED", true) // the writer's tenant has been reset
	g.check("unaffected-by-other-reset", expectTree(m, map[string]string{
		"new.txt": "", "del.txt": "base del\n", "dir/edit.txt": "base edit\n", "keep.txt": "base keep\n", "reader.txt": "reader's\n"}))
	g.check("write-after-other-reset", os.WriteFile(m+"/reader2.txt", []byte("still here\n"), 0o644))
	g.state("DONE", false)
}

// expectTree checks files under root: content "" means absent (a
// directory: present when its content is "/").
func expectTree(root string, want map[string]string) error {
	var errs []string
	for rel, content := range want {
		p := root + "/" + rel
		if content == "" {
			if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Sprintf("%s: want absent, got %v", rel, err))
			}
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != content {
			errs = append(errs, fmt.Sprintf("%s: got %q %v, want %q", rel, b, err, content))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
