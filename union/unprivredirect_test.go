package union

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// Unprivileged redirects. A union run by an ordinary user writes its
// markers in the user.overlay namespace, as overlayfs's userxattr option
// reads them, redirects included. What the kernel does with those
// redirects (checked below, on this machine's kernel): it refuses to mount
// userxattr with redirect_dir=on or follow ("conflicting options",
// EINVAL), because the owner of a file may set its user.* xattrs and so
// could forge a redirect to a directory it may not read; mounted with
// userxattr alone it does not follow them, and a lookup of a redirected
// directory answers EPERM ("refusing to follow redirect") where its parent
// has lower layers, and where its parent has none (an upper-only directory
// it was moved into) the redirect is not even read: the directory shows
// its upper part only. So an upper in which union9p renamed a merged
// directory unprivileged is read whole only by union9p; union9p reads it
// back as it wrote it.

const unprivRedirectEnv = "UNION9P_TEST_UNPRIV_REDIRECT_BASE"

func TestUnprivilegedRedirects(t *testing.T) {
	if base := os.Getenv(unprivRedirectEnv); base != "" {
		unprivilegedRedirectChecks(t, base)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to prepare the layers, drop privileges and mount overlayfs")
	}
	base := t.TempDir()
	must(t, os.Chmod(base, 0o755))
	must(t, os.Chmod(filepath.Dir(base), 0o755))
	lower := filepath.Join(base, "lower")
	layout(t, lower, "d/sub/f=1", "d/g=2", "c/h=3", "keep=k")
	up, work := filepath.Join(base, "upper"), filepath.Join(base, "work")
	for _, d := range []string{up, work} {
		must(t, os.Mkdir(d, 0o755))
		must(t, os.Chown(d, 65534, 65534))
	}
	runAsNobody(t, base, lower, "TestUnprivilegedRedirects", unprivRedirectEnv)

	// The format: user.overlay.redirect, as the kernel's userxattr spells
	// it (an absolute path after a move to another directory), and no
	// trusted.overlay.* at all.
	for dir, want := range map[string]string{"e": "d", "x/c2": "/c"} {
		p := filepath.Join(up, dir)
		if v, err := getXattrPath(p, "user.overlay.redirect", unix.Lgetxattr); err != nil || string(v) != want {
			t.Fatalf("%s has user.overlay.redirect %q, %v; want %q", dir, v, err, want)
		}
		if _, err := getXattrPath(p, "trusted.overlay.redirect", unix.Lgetxattr); err != unix.ENODATA {
			t.Fatalf("%s has a trusted.overlay.redirect (%v)", dir, err)
		}
	}

	// The kernel: userxattr with redirects is refused at mount time.
	mnt := filepath.Join(base, "mnt")
	kwork := filepath.Join(base, "kwork")
	must(t, os.Mkdir(mnt, 0o755))
	must(t, os.Mkdir(kwork, 0o755))
	opts := "lowerdir=" + lower + ",upperdir=" + up + ",workdir=" + kwork + ",userxattr"
	for _, rd := range []string{"on", "follow"} {
		err := unix.Mount("overlay", mnt, "overlay", 0, opts+",redirect_dir="+rd)
		if err == nil {
			unix.Unmount(mnt, 0)
			t.Fatalf("the kernel mounted userxattr,redirect_dir=%s: this comment and union9p's note are out of date", rd)
		}
		wantErrno(t, err, unix.EINVAL)
	}
	// Mounted without them, it lists the redirected directories' names,
	// refuses to look up the one whose parent has lower layers (EPERM),
	// shows the other without its lower part, and the rest as union9p.
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		t.Skipf("kernel overlay with userxattr impossible here: %v", err)
	}
	defer unix.Unmount(mnt, 0)
	var st unix.Stat_t
	wantErrno(t, unix.Lstat(filepath.Join(mnt, "e"), &st), unix.EPERM)
	if ents, err := os.ReadDir(filepath.Join(mnt, "x/c2")); err != nil || len(ents) != 0 {
		t.Errorf("kernel: x/c2 lists %v, %v; want its (empty) upper part only", ents, err)
	}
	for _, gone := range []string{"d", "c"} {
		if _, err := os.Lstat(filepath.Join(mnt, gone)); !os.IsNotExist(err) {
			t.Errorf("kernel: %s after its rename: %v", gone, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "keep")); err != nil || string(b) != "k" {
		t.Errorf("kernel: keep reads %q, %v", b, err)
	}
}

// unprivilegedRedirectChecks runs as nobody: renames a merged directory in
// place and then into another directory, and reads the result back, also
// from a union opened afresh on the same layers.
func unprivilegedRedirectChecks(t *testing.T, base string) {
	opts := Options{Lowers: []string{filepath.Join(base, "lower")}, Upper: filepath.Join(base, "upper"),
		Workdir: filepath.Join(base, "work"), RedirectDir: RedirectOn}
	u, err := Open(opts)
	must(t, err)
	tu := &testUnion{Union: u}
	if u.ns != "user.overlay." {
		t.Fatalf("unprivileged union writes markers in %q", u.ns)
	}
	root, err := u.Root()
	must(t, err)
	must(t, root.Rename("d", root, "e"))
	v, err := getXattrPath(filepath.Join(base, "upper/e"), "user.overlay.redirect", unix.Lgetxattr)
	if err != nil || string(v) != "d" {
		t.Fatalf("e has user.overlay.redirect %q, %v; want \"d\" (relative, within one directory)", v, err)
	}
	x, err := root.Mkdir("x", 0o755, Owner{})
	must(t, err)
	must(t, root.Rename("c", x, "c2"))
	x.Release()
	root.Release()
	check := func(tu *testUnion, when string) {
		t.Helper()
		if got := tu.list(t, "e"); !slices.Equal(got, []string{"g", "sub"}) {
			t.Errorf("%s: e lists %v", when, got)
		}
		if got := tu.read(t, "e/sub/f"); got != "1" {
			t.Errorf("%s: e/sub/f reads %q", when, got)
		}
		if got := tu.read(t, "x/c2/h"); got != "3" {
			t.Errorf("%s: x/c2/h reads %q", when, got)
		}
		for _, gone := range []string{"d", "c"} {
			n, err := tu.walk(t, gone)
			if err == nil {
				n.Release()
			}
			wantErrno(t, err, unix.ENOENT)
		}
	}
	check(tu, "after the renames")
	u.Close()

	// A fresh union (redirect_dir=off still follows) reads the upper back.
	opts.RedirectDir = RedirectOff
	u2, err := Open(opts)
	must(t, err)
	defer u2.Close()
	check(&testUnion{Union: u2}, "reopened")
}
