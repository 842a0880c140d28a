package main

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/union9p/union9p/test/p9wire"
	"github.com/union9p/union9p/union/tenant"
	"golang.org/x/sys/unix"
)

// Tenant quotas over real sockets: `serve --tenants --quota` and
// `union9p tenant quota` against clients of the tenants' listeners.

// duUsage is what GNU du counts in dir: apparent bytes and inodes, the
// figures a tenant's ledger keeps (union/quota.go).
func duUsage(t *testing.T, dir string) tenant.Usage {
	t.Helper()
	one := func(args ...string) int64 {
		out, err := exec.Command("du", append(append([]string{"-s", "-x"}, args...), dir)...).Output()
		if err != nil {
			t.Fatalf("du %v %s: %v", args, dir, err)
		}
		n, err := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return tenant.Usage{Bytes: one("--apparent-size", "--block-size=1"), Inodes: one("--inodes")}
}

// wantUsageIsDu checks the tenant's usage as `union9p tenant list` shows it
// against du of its upper.
func wantUsageIsDu(t *testing.T, s *tenantsSetup, name, what string) tenant.Usage {
	t.Helper()
	got := tenantInfo(t, s.ctl, name).Usage
	if want := duUsage(t, filepath.Join(s.dir, name, "upper")); got != want {
		t.Fatalf("%s: tenant %s uses %+v, du says %+v", what, name, got, want)
	}
	return got
}

// wantNothingHalfMade checks that tenant name's work directory holds
// nothing and its upper has none of the names given.
func wantNothingHalfMade(t *testing.T, s *tenantsSetup, name, what string, absent ...string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.dir, name, "work", "work"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("%s: work directory holds %v", what, ents)
	}
	for _, p := range absent {
		if _, err := os.Lstat(filepath.Join(s.dir, name, "upper", p)); !os.IsNotExist(err) {
			t.Fatalf("%s: upper has %s (%v)", what, p, err)
		}
	}
}

// createWrite creates name in the root (fid 0) through fid 90 and writes n
// bytes; it returns the error of the create or of the write.
func createWrite(c *p9wire.Client, name string, n int) error {
	if _, err := c.Walk(0, 90); err != nil {
		return err
	}
	defer c.Clunk(90)
	if _, _, err := c.Lcreate(90, name, p9wire.OWronly, 0o644, 0); err != nil {
		return err
	}
	return writeN(c, 90, 0, n)
}

// writeN writes n zero bytes at off through fid in chunks the msize
// allows; it stops at the first error.
func writeN(c *p9wire.Client, fid uint32, off uint64, n int) error {
	const chunk = 32 << 10
	for n > 0 {
		k := min(n, chunk)
		w, err := c.Write(fid, off, make([]byte, k))
		if err != nil {
			return err
		}
		off += uint64(w)
		n -= int(w)
	}
	return nil
}

func TestServeTenantsQuotaRefusesPastLimit(t *testing.T) {
	big := strings.Repeat("b", 300<<10)
	s := startTenantsServerWith(t, map[string]string{"big": big}, []string{"--quota", "200K", "--quota-inodes", "12"})
	a := attachRoot(t, s.aSock, "")
	used := wantUsageIsDu(t, s, "a", "fresh tenant")
	if in := tenantInfo(t, s.ctl, "a"); in.Quota != (tenant.Quota{Bytes: 200 << 10, Inodes: 12}) || in.OwnQuota {
		t.Fatalf("default quota from --quota, --quota-inodes: %+v", in)
	}

	// Bytes: a 100 KiB file fits; 150 KiB more does not, and the file
	// keeps what was written before.
	if err := createWrite(a, "f1", 100<<10); err != nil {
		t.Fatalf("write within the quota: %v", err)
	}
	// (f2 as an empty file takes no bytes.)
	left := 200<<10 - wantUsageIsDu(t, s, "a", "after f1").Bytes
	wantErrno(t, "write past the byte quota", createWrite(a, "f2", 150<<10), unix.EDQUOT)
	// The 32 KiB writes that fitted were made; the one that did not
	// wrote nothing.
	if fi, err := os.Stat(filepath.Join(s.dir, "a", "upper", "f2")); err != nil || fi.Size() != left/(32<<10)*(32<<10) {
		t.Fatalf("refused write left f2 %v %v, want the %d bytes that fitted in whole writes", fi, err, left/(32<<10)*(32<<10))
	}
	// Copy-up of a file larger than what is left, for a write or a
	// setxattr: EDQUOT, and no trace of it.
	if _, err := a.Walk(0, 10, "big"); err != nil {
		t.Fatal(err)
	}
	_, _, err := a.Lopen(10, p9wire.ORdwr)
	wantErrno(t, "copy-up of a file over the remaining quota", err, unix.EDQUOT)
	wantErrno(t, "setxattr of a file over the remaining quota", a.SetXattr(10, 11, "user.k", []byte("v"), 0), unix.EDQUOT)
	wantErrno(t, "truncate up past the quota", a.Setattr(10, p9wire.SetAttr{Valid: p9wire.SetattrSize, Size: 1 << 20}), unix.EDQUOT)
	wantNothingHalfMade(t, s, "a", "refused copy-ups", "big")
	a.Clunk(10)
	if got, err := readFile(a, "big"); err != nil || len(got) == 0 || got != big[:len(got)] {
		t.Fatalf("big after the refusals: %d bytes, %v", len(got), err)
	}

	// Inodes: 12 in all, the root and f1, f2 hold 3.
	used = wantUsageIsDu(t, s, "a", "after the byte refusals")
	made := 0
	for i := 0; ; i++ {
		err := createWrite(a, fmt.Sprintf("n%d", i), 0)
		if err != nil {
			wantErrno(t, "create past the inode quota", err, unix.EDQUOT)
			break
		}
		made++
		if i > 20 {
			t.Fatal("the inode quota refused nothing")
		}
	}
	if want := 12 - int(used.Inodes); made != want {
		t.Fatalf("made %d files with %d inodes left", made, want)
	}
	_, err = a.Mkdir(0, "dir", 0o755, 0)
	wantErrno(t, "mkdir past the inode quota", err, unix.EDQUOT)
	_, err = a.Symlink(0, "sym", "greeting", 0)
	wantErrno(t, "symlink past the inode quota", err, unix.EDQUOT)
	_, err = a.Mknod(0, "fifo", unix.S_IFIFO|0o644, 0, 0, 0)
	wantErrno(t, "mknod past the inode quota", err, unix.EDQUOT)
	// Removing a lower file needs a whiteout, an inode.
	wantErrno(t, "unlink of a lower file past the inode quota", a.Unlinkat(0, "greeting", 0), unix.EDQUOT)
	wantNothingHalfMade(t, s, "a", "refused creates", "dir", "sym", "fifo")
	if got, err := readFile(a, "greeting"); err != nil || got != "hello\n" {
		t.Fatalf("greeting after a refused unlink: %q %v", got, err)
	}
	// A hard link needs no inode.
	if _, err := a.Walk(0, 12, "f1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Link(0, 12, "f1-link"); err != nil {
		t.Fatalf("link at the inode quota: %v", err)
	}
	a.Clunk(12)
	wantUsageIsDu(t, s, "a", "at the quotas")

	// Tenant b has the same default quota, and none of a's usage.
	b := attachRoot(t, s.bSock, "")
	if err := createWrite(b, "f1", 150<<10); err != nil {
		t.Fatalf("tenant b's write: %v", err)
	}

	// Raising a's quota live: the refused changes go through now, on the
	// same connection.
	if _, errOut, code := runTenant(t, s.ctl, "quota", "--bytes", "10M", "--inodes", "100", "a"); code != 0 {
		t.Fatalf("tenant quota: %s", errOut)
	}
	if _, err := a.Walk(0, 10, "big"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Lopen(10, p9wire.ORdwr); err != nil {
		t.Fatalf("copy-up after the quota was raised: %v", err)
	}
	a.Clunk(10)
	if _, err := a.Mkdir(0, "dir", 0o755, 0); err != nil {
		t.Fatalf("mkdir after the quota was raised: %v", err)
	}
	used = wantUsageIsDu(t, s, "a", "after raising the quota")
	// Lowered below its usage: growth is refused, freeing is not.
	if _, errOut, code := runTenant(t, s.ctl, "quota", "--bytes", strconv.FormatInt(used.Bytes-1, 10), "a"); code != 0 {
		t.Fatalf("tenant quota: %s", errOut)
	}
	wantErrno(t, "write after the quota was lowered", createWrite(a, "g", 1), unix.EDQUOT)
	if err := a.Unlinkat(0, "big", 0); err != nil {
		t.Fatalf("unlink over the quota: %v", err)
	}
	if err := createWrite(a, "h", 1); err != nil {
		t.Fatalf("write once usage is below the quota: %v", err)
	}
	wantUsageIsDu(t, s, "a", "after lowering the quota")
	wantUsageIsDu(t, s, "b", "tenant b")
}

func TestServeTenantsUsageMatchesDuAfterRandomWorkload(t *testing.T) {
	lower := map[string]string{}
	for i := 0; i < 8; i++ {
		lower[fmt.Sprintf("d/l%d", i)] = strings.Repeat("x", 3000*i)
	}
	s := startTenantsServerWith(t, lower, []string{"--quota", "300K", "--quota-inodes", "30"})
	c := attachRoot(t, s.aSock, "")
	rng := rand.New(rand.NewSource(7))
	dirs := [][]string{{}, {"d"}, {"e"}}
	names := []string{"l0", "l1", "l3", "l5", "l7", "a", "b", "e", "greeting"}
	quotaHit := 0
	note := func(err error) {
		if err == unix.EDQUOT {
			quotaHit++
		}
	}
	for i := 0; i < 1500; i++ {
		dir := dirs[rng.Intn(len(dirs))]
		name := names[rng.Intn(len(names))]
		path := append(append([]string{}, dir...), name)
		if _, err := c.Walk(0, 1, dir...); err != nil {
			continue
		}
		switch rng.Intn(9) {
		case 0:
			if _, _, err := c.Lcreate(1, name, p9wire.ORdwr, 0o644, 0); err == nil {
				note(writeN(c, 1, uint64(rng.Intn(8000)), rng.Intn(60000)))
			} else {
				note(err)
			}
		case 1:
			if _, err := c.Walk(0, 2, path...); err == nil {
				if _, _, err := c.Lopen(2, p9wire.OWronly); err == nil {
					note(writeN(c, 2, uint64(rng.Intn(30000)), rng.Intn(30000)))
				} else {
					note(err)
				}
				c.Clunk(2)
			}
		case 2:
			if _, err := c.Walk(0, 2, path...); err == nil {
				note(c.Setattr(2, p9wire.SetAttr{Valid: p9wire.SetattrSize, Size: uint64(rng.Intn(40000))}))
				c.Clunk(2)
			}
		case 3:
			_, err := c.Mkdir(1, name, 0o755, 0)
			note(err)
		case 4:
			_, err := c.Symlink(1, name, strings.Repeat("s", 1+rng.Intn(200)), 0)
			note(err)
		case 5:
			note(c.Unlinkat(1, name, 0))
		case 6:
			note(c.Unlinkat(1, name, p9wire.AtRemovedir))
		case 7:
			if _, err := c.Walk(0, 2, dirs[rng.Intn(len(dirs))]...); err == nil {
				note(c.Renameat(1, name, 2, names[rng.Intn(len(names))]))
				c.Clunk(2)
			}
		case 8:
			if _, err := c.Walk(0, 2, path...); err == nil {
				note(c.SetXattr(2, 3, "user.k", []byte("v"), 0))
				c.Clunk(2)
			}
		}
		c.Clunk(1)
		if i%300 == 0 {
			wantUsageIsDu(t, s, "a", fmt.Sprintf("after %d operations", i))
		}
	}
	got := wantUsageIsDu(t, s, "a", "after the workload")
	if quotaHit == 0 || got.Inodes < 10 {
		t.Fatalf("the workload never reached the quota (%d EDQUOT) or made little (%+v): it checks too little", quotaHit, got)
	}
	if in := tenantInfo(t, s.ctl, "a"); got.Bytes > in.Quota.Bytes+64<<10 || got.Inodes > in.Quota.Inodes {
		t.Fatalf("usage %+v beyond the quota %+v", got, in.Quota)
	}
	wantNothingHalfMade(t, s, "a", "after the workload")
	t.Logf("%d operations refused with EDQUOT; final usage %+v", quotaHit, got)
}
