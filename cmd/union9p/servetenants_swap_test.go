package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A tenant directory replaced by a symbolic link to the outside while the
// server serves it: the attached tenant goes on in its own directories
// (which the server holds open, wherever the host moved them inside DIR),
// the control commands refuse the link with a clear error, and nothing
// outside DIR is read or changed.
func TestServeTenantsDirSwappedForSymlinkWhileServing(t *testing.T) {
	s := startTenantsServer(t)
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.MkdirAll(filepath.Join(outside, "upper"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "upper", "keep"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := attachRoot(t, s.aSock, "")
	writeFile(t, a, "before\n", "f")

	tdir := filepath.Join(s.dir, "a")
	if err := os.Rename(tdir, tdir+"-moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, tdir); err != nil {
		t.Fatal(err)
	}
	// The attached client, and a new one (the tenant's union is open),
	// still use the tenant's own directories.
	writeFile(t, a, "after\n", "g")
	a2 := attachRoot(t, s.aSock, "")
	if got, err := readFile(a2, "g"); err != nil || got != "after\n" {
		t.Fatalf("new client of a reads g = %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(tdir+"-moved", "upper", "g")); err != nil {
		t.Fatalf("the write did not land in the tenant's own upper: %v", err)
	}
	for _, args := range [][]string{{"reset", "a"}, {"remove", "a"}, {"quota", "--bytes", "1M", "a"}} {
		_, errOut, code := runTenant(t, s.ctl, args...)
		if code == 0 || !strings.Contains(errOut, "symbolic link") {
			t.Errorf("tenant %v with DIR/a a symlink: exit %d, %q", args, code, errOut)
		}
	}
	// Tenant b and the listing are unaffected.
	b := attachRoot(t, s.bSock, "")
	writeFile(t, b, "b\n", "h")
	if out, errOut, code := runTenant(t, s.ctl, "list"); code != 0 || !strings.Contains(out, "b") {
		t.Errorf("tenant list: exit %d: %s %s", code, out, errOut)
	}
	ents, err := os.ReadDir(filepath.Join(outside, "upper"))
	if err != nil || len(ents) != 1 || ents[0].Name() != "keep" {
		t.Fatalf("outside DIR: %v %v", ents, err)
	}
	if data, err := os.ReadFile(filepath.Join(outside, "upper", "keep")); err != nil || string(data) != "precious" {
		t.Fatalf("outside DIR keep: %q %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(outside, "quota")); !os.IsNotExist(err) {
		t.Fatal("a quota file was written through the link")
	}
}
