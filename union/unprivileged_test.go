package union

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The unprivileged format is tested by running the test binary again as
// the user nobody, on layers the root half prepares.
const unprivEnv = "UNION9P_TEST_UNPRIVILEGED_BASE"

func TestUnprivilegedFormat(t *testing.T) {
	if base := os.Getenv(unprivEnv); base != "" {
		unprivilegedChecks(t, base)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to prepare the layers and drop privileges")
	}
	base := t.TempDir()
	must(t, os.Chmod(base, 0o755))
	must(t, os.Chmod(filepath.Dir(base), 0o755)) // t.TempDir makes it private
	lower := filepath.Join(base, "lower")
	layout(t, lower, "d/f=1", "d/g=2", "keep=k", "ro/inside=1")
	must(t, os.Chmod(filepath.Join(lower, "ro"), 0o555))
	must(t, unix.Mkfifo(filepath.Join(lower, "lowerfifo"), 0o644))
	up, work := filepath.Join(base, "upper"), filepath.Join(base, "work")
	for _, d := range []string{up, work} {
		must(t, os.Mkdir(d, 0o755))
		must(t, os.Chown(d, 65534, 65534))
	}
	runAsNobody(t, base, lower, "TestUnprivilegedFormat", unprivEnv)
	// The markers are in the user.overlay namespace (overlayfs userxattr).
	v, err := getXattrPath(filepath.Join(up, "d"), "user.overlay.opaque", unix.Lgetxattr)
	if err != nil || string(v) != "y" {
		t.Fatalf("re-created dir not marked opaque in user.overlay: %q %v", v, err)
	}
}

// runAsNobody runs test again as the user nobody, with env set to base,
// and fails if it fails or if the lower directory changed.
func runAsNobody(t *testing.T, base, lower, test, env string) {
	t.Helper()
	before := snapshot(t, []string{lower})
	// The go tool's build directory is private to root: run a copy.
	bin := filepath.Join(base, "union.test")
	data, err := os.ReadFile(os.Args[0])
	must(t, err)
	must(t, os.WriteFile(bin, data, 0o755))
	cmd := exec.Command(bin, "-test.run=^"+test+"$", "-test.v")
	cmd.Env = append(os.Environ(), env+"="+base)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unprivileged half failed: %v\n%s", err, out)
	}
	if after := snapshot(t, []string{lower}); after != before {
		t.Fatalf("lower changed:\n%s\n%s", before, after)
	}
}

func unprivilegedChecks(t *testing.T, base string) {
	u, err := Open(Options{Lowers: []string{filepath.Join(base, "lower")}, Upper: filepath.Join(base, "upper"), Workdir: filepath.Join(base, "work")})
	must(t, err)
	defer u.Close()
	tu := &testUnion{Union: u}
	if u.ownership != MappedXattr {
		t.Fatalf("ownership %v, want mapped xattrs", u.ownership)
	}
	d := tu.mustWalk(t, "d")
	must(t, d.Unlink("f", false))
	if got := tu.list(t, "d"); !slices.Equal(got, []string{"g"}) {
		t.Fatalf("d lists %v after unlink", got)
	}
	_, err = tu.walk(t, "d/f")
	wantErrno(t, err, unix.ENOENT)
	if _, err := getXattrPath(filepath.Join(base, "upper/d/f"), "user.overlay.whiteout", unix.Lgetxattr); err != nil {
		t.Fatalf("no xattr whiteout for d/f: %v", err)
	}
	must(t, d.Unlink("g", false))
	root := tu.mustWalk(t, "/")
	must(t, root.Unlink("d", true))
	nd, err := root.Mkdir("d", 0o755, Owner{UID: 0, GID: 0})
	must(t, err)
	nd.Release()
	if got := tu.list(t, "d"); len(got) != 0 {
		t.Fatalf("re-created d shows %v", got)
	}
	n, f, err := root.Create("mine", unix.O_RDWR, 0o4755, Owner{UID: 1000, GID: 100})
	must(t, err)
	f.Close()
	a, err := n.Attr()
	must(t, err)
	n.Release()
	if a.UID != 1000 || a.GID != 100 || a.Mode&0o7777 != 0o4755 {
		t.Fatalf("mapped attrs uid %d gid %d mode %o", a.UID, a.GID, a.Mode&0o7777)
	}
	// FIFOs and sockets can be made, and copied up (chmod), though Linux
	// keeps no user.* xattrs on them.
	for _, mode := range []uint32{unix.S_IFIFO | 0o644, unix.S_IFSOCK | 0o600} {
		sn, err := root.Mknod(fmt.Sprintf("special%o", mode>>12), mode, 0, Owner{UID: 1000, GID: 1000})
		must(t, err)
		sn.Release()
	}
	fifo := tu.mustWalk(t, "lowerfifo")
	must(t, fifo.SetAttr(SetAttr{SetMode: true, Mode: 0o600}))
	keep := tu.mustWalk(t, "keep")
	must(t, keep.SetAttr(SetAttr{SetUID: true, UID: 33, SetMode: true, Mode: 0o640}))
	a, err = keep.Attr()
	must(t, err)
	if a.UID != 33 || a.Mode&0o7777 != 0o640 {
		t.Fatalf("chown/chmod through mapped xattrs: uid %d mode %o", a.UID, a.Mode&0o7777)
	}
	// A copy-up must not change the owner or mode a client sees, though
	// the copy belongs to nobody on the host; and the server must still be
	// able to create in a copied-up read-only directory.
	ro := tu.mustWalk(t, "ro")
	n2, f2, err := ro.Create("new", unix.O_RDWR, 0o644, Owner{UID: 0, GID: 0})
	must(t, err)
	f2.Close()
	n2.Release()
	a, err = ro.Attr()
	must(t, err)
	if a.UID != 0 || a.Mode&0o7777 != 0o555 {
		t.Fatalf("copied-up dir shows uid %d mode %o, want the lower's 0 and 555", a.UID, a.Mode&0o7777)
	}
	inside := tu.mustWalk(t, "ro/inside")
	must(t, inside.SetXattr("user.note", []byte("x"), 0))
	a, err = inside.Attr()
	must(t, err)
	if a.UID != 0 || a.Mode&0o7777 != 0o644 {
		t.Fatalf("copied-up file shows uid %d mode %o, want 0 and 644", a.UID, a.Mode&0o7777)
	}
	names, err := keep.ListXattr()
	must(t, err)
	for _, nm := range names {
		if u.isPrivate(nm) {
			t.Fatalf("private xattr %s listed", nm)
		}
	}
}
