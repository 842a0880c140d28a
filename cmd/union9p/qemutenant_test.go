package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/union9p/union9p/qemu"
	"github.com/union9p/union9p/test/p9wire"
	"golang.org/x/sys/unix"
)

// courierClient connects a "guest" through the tenant courier, as QEMU's
// guestfwd does for `union9p qemu --tenant NAME`.
func courierClient(t *testing.T, ctl, name string) *p9wire.Client {
	t.Helper()
	conn, err := guestConnVia(t, "qemu-courier", "--tenant", name, attachPath(ctl))
	if err != nil {
		t.Fatalf("courier --tenant %s: %v", name, err)
	}
	c, err := p9wire.NewClient(conn, 1<<20)
	if err != nil {
		t.Fatalf("version through the courier: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Attach(0, "root", "", 0); err != nil {
		t.Fatalf("attach through the courier: %v", err)
	}
	return c
}

// TestAttachSocketBindsTenant: guests handed over on the attach socket are
// served as the courier's tenant, whatever aname they send; writes of one
// are not seen by the other; a reset ends the attached guest's connection
// and its next one sees the pristine base, while the other tenant's guest
// goes on.
func TestAttachSocketBindsTenant(t *testing.T) {
	s := startTenantsServer(t)
	attachRoot(t, s.aSock, "") // the server is up
	if fi, err := os.Lstat(attachPath(s.ctl)); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("attach socket: %v %v, want an owner-only socket", fi, err)
	}
	ga := courierClient(t, s.ctl, "a")
	gb := courierClient(t, s.ctl, "b")
	writeFile(t, ga, "guest a\n", "fromGuestA")
	if err := ga.Unlinkat(0, "greeting", 0); err != nil {
		t.Fatal(err)
	}
	writeFile(t, ga, "changed by a\n", "d", "f") // a copy-up
	writeFile(t, gb, "guest b\n", "fromGuestB")
	if data, err := os.ReadFile(filepath.Join(s.dir, "a", "upper", "fromGuestA")); err != nil || string(data) != "guest a\n" {
		t.Errorf("a's upper/fromGuestA: %q %v", data, err)
	}
	_, err := gb.Walk(0, 1, "fromGuestA")
	wantErrno(t, "b walks to a's new file", err, unix.ENOENT)
	if got, err := readFile(gb, "greeting"); err != nil || got != "hello\n" {
		t.Errorf("b reads greeting (a deleted it) = %q, %v", got, err)
	}
	if got, err := readFile(gb, "d", "f"); err != nil || got != "base\n" {
		t.Errorf("b reads d/f (a changed it) = %q, %v", got, err)
	}
	// The guest's aname does not choose: an attach naming b on a's courier
	// connection is still a's union.
	conn, err := guestConnVia(t, "qemu-courier", "--tenant", "a", attachPath(s.ctl))
	if err != nil {
		t.Fatal(err)
	}
	gx, err := p9wire.NewClient(conn, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer gx.Close()
	if _, err := gx.Attach(0, "root", "b", 0); err == nil {
		if _, err := gx.Walk(0, 1, "fromGuestB"); !errors.Is(err, unix.ENOENT) {
			t.Errorf("a's guest attaching with aname b walks to b's file: %v, want ENOENT", err)
		}
	}

	if out, errOut, code := runTenant(t, s.ctl, "reset", "a"); code != 0 {
		t.Fatalf("tenant reset a: exit %d: %s %s", code, out, errOut)
	}
	var errno unix.Errno
	if _, err := ga.Walk(0, 1, "fromGuestA"); err == nil || errors.As(err, &errno) {
		t.Errorf("a's attached guest after the reset: walk gave %v, want the connection closed", err)
	}
	ga2 := courierClient(t, s.ctl, "a")
	_, err = ga2.Walk(0, 1, "fromGuestA")
	wantErrno(t, "a's guest after reset walks to its old file", err, unix.ENOENT)
	if got, err := readFile(ga2, "greeting"); err != nil || got != "hello\n" {
		t.Errorf("a's guest after reset reads greeting = %q, %v", got, err)
	}
	if got, err := readFile(gb, "fromGuestB"); err != nil || got != "guest b\n" {
		t.Errorf("b's guest, attached through a's reset, reads its file = %q, %v", got, err)
	}
}

// TestAttachRefusals: the courier is refused (and the guest's connection
// closed) for a tenant that does not exist or a name that cannot be one,
// and union9p qemu says why before starting QEMU.
func TestAttachRefusals(t *testing.T) {
	s := startTenantsServer(t)
	attachRoot(t, s.aSock, "")
	for _, name := range []string{"nosuch", "../a", "a/b", strings.Repeat("x", 256)} {
		if _, err := guestConnVia(t, "qemu-courier", "--tenant", name, attachPath(s.ctl)); err == nil {
			t.Errorf("courier --tenant %q: succeeded", name)
		}
	}
	// What the server answers, as union9p qemu's forwarder sees it.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if err := qemu.AttachFD(attachPath(s.ctl), "nosuch", fds[0]); err == nil || !strings.Contains(err.Error(), "no such tenant") {
		t.Errorf("attach to tenant nosuch: %v, want no such tenant", err)
	}
	if err := qemu.AttachFD(filepath.Join(t.TempDir(), "none.attach"), "a", fds[0]); err == nil || !strings.Contains(err.Error(), "no tenant server is running") {
		t.Errorf("attach with no server: %v", err)
	}

	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"unknown tenant": {[]string{"--control", s.ctl, "--tenant", "nosuch"}, "no such tenant"},
		"no server":      {[]string{"--control", filepath.Join(t.TempDir(), "ctl"), "--tenant", "a"}, "no server is running"},
		"bad name":       {[]string{"--control", s.ctl, "--tenant", "../a"}, "--tenant"},
		"serve flags":    {[]string{"--control", s.ctl, "--tenant", "a", "--lower", s.lower}, "takes no serve flags"},
	} {
		cmd := union9p(append(append([]string{"qemu", "--transport", "tcp"}, tc.args...), "--", "true")...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: union9p qemu %v: %v\n%s(want %q)", name, tc.args, err, out, tc.want)
		}
	}
}

func TestParseQemuTenantArgs(t *testing.T) {
	defer func(old string) { qemuControl = old }(qemuControl)
	tr, unions, _, err := parseQemuArgs([]string{"--control", "/x/ctl", "--transport", "tcp", "--tenant", "alice", "--next", "--name", "own", "--lower", "/a", "--", "qemu"})
	if err != nil || qemuControl != "/x/ctl" || tr != (transports{tcp: true}) || len(unions) != 2 ||
		unions[0].tenant != "alice" || unions[0].name != "0" || unions[1].tenant != "" {
		t.Errorf("got %+v %+v control %s, %v", tr, unions, qemuControl, err)
	}
	if _, _, _, err := parseQemuArgs([]string{"--tenant", "a", "--control", "/c", "--", "qemu"}); err == nil {
		t.Error("--control after a union: accepted")
	}
}
