package layertool

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// dataXattrs lists the xattrs of p outside the overlay and mapped-owner
// namespaces, as name=value, sorted.
func dataXattrs(t *testing.T, p string) string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	must(t, err)
	var out []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" || isPrivateXattr(name) {
			continue
		}
		v := make([]byte, 64<<10)
		k, err := unix.Lgetxattr(p, name, v)
		must(t, err)
		out = append(out, fmt.Sprintf("%s=%q", name, v[:k]))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// An xattr removed through the union from a directory that merges with a
// lower one is gone from the copied-up directory only: merge --in-place
// must remove it from the lower directory it folds that copy into, or the
// new base shows it again (a removexattr after a copy-up, which random
// workloads hit only on some seeds).
func TestMergeInPlaceDropsRemovedDirXattrs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for trusted.overlay.* markers and the kernel's overlayfs")
	}
	base := t.TempDir()
	l := Layers{Lowers: []string{filepath.Join(base, "lower")}, Upper: filepath.Join(base, "upper"), Workdir: filepath.Join(base, "work")}
	for _, d := range []string{"lower/d", "upper/d", "work"} {
		must(t, os.MkdirAll(filepath.Join(base, d), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(base, "lower/d/x"), []byte("x"), 0o644))
	for _, d := range []string{"lower", "lower/d"} {
		p := filepath.Join(base, d)
		if err := unix.Lsetxattr(p, "user.color", []byte("red"), 0); err != nil {
			t.Skipf("user xattrs on %s: %v", base, err)
		}
		must(t, unix.Lsetxattr(p, "user.a", []byte("kept"), 0))
	}
	// The copy-ups of / and /d, then removexattr user.color on both, then
	// setxattr user.a on /d: what the kernel leaves in its upper.
	must(t, unix.Lsetxattr(l.Upper, "user.a", []byte("kept"), 0))
	must(t, unix.Lsetxattr(filepath.Join(l.Upper, "d"), "user.a", []byte("new"), 0))
	const wantRoot, wantD = `user.a="kept"`, `user.a="new"`

	// The kernel's overlayfs reads the hand-built upper so.
	mnt := filepath.Join(base, "mnt")
	must(t, os.Mkdir(mnt, 0o755))
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,index=off", l.Lowers[0], l.Upper, l.Workdir)
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, opts); err != nil {
		t.Fatalf("mount -t overlay -o %s: %v", opts, err)
	}
	kRoot, kD := dataXattrs(t, mnt), dataXattrs(t, filepath.Join(mnt, "d"))
	must(t, unix.Unmount(mnt, 0))
	if kRoot != wantRoot || kD != wantD {
		t.Fatalf("the kernel's overlayfs shows / with %s and /d with %s, want %s and %s", kRoot, kD, wantRoot, wantD)
	}

	must(t, Merge(l, "", MergeOptions{InPlace: true}))
	if got := dataXattrs(t, l.Lowers[0]); got != wantRoot {
		t.Errorf("after merge --in-place the lower's root has %s, want %s", got, wantRoot)
	}
	if got := dataXattrs(t, filepath.Join(l.Lowers[0], "d")); got != wantD {
		t.Errorf("after merge --in-place the lower's /d has %s, want %s", got, wantD)
	}
	if b, err := os.ReadFile(filepath.Join(l.Lowers[0], "d/x")); err != nil || string(b) != "x" {
		t.Errorf("/d/x after merge --in-place: %q, %v", b, err)
	}
}
