package layertool

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// kernelStat mounts the kernel's overlayfs on l (redirect_dir=on) and
// lstats the given paths of the merged tree.
func kernelStat(t *testing.T, l Layers, work string, paths ...string) map[string]unix.Stat_t {
	t.Helper()
	mnt := t.TempDir()
	lowers := l.Lowers[0]
	for _, p := range l.Lowers[1:] {
		lowers += ":" + p
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=on,index=off", lowers, l.Upper, work)
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, opts); err != nil {
		t.Fatalf("mount -t overlay -o %s: %v", opts, err)
	}
	defer unix.Unmount(mnt, 0)
	out := map[string]unix.Stat_t{}
	for _, p := range paths {
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(mnt, p), &st))
		b, err := os.ReadFile(filepath.Join(mnt, p))
		must(t, err)
		if string(b) != "linked "+filepath.Base(p) && string(b) != "pair" {
			t.Fatalf("%s reads %q through the kernel's overlayfs", p, b)
		}
		out[p] = st
	}
	return out
}

// A directory renamed through the union (a redirect) is exported with its
// lower content copied in, since an OCI layer has no redirects. Hard links
// among the names it shows stay links. A lower file whose other name the
// lowers hide keeps only the visible name: the kernel reports the lower
// inode's count (2), counting the hidden name, which no layer can carry,
// so the imported tree counts 1 (the shape of the differential seed 65
// with metadata-only copies, whose round trip only differs in that).
func TestExportRenamedDirKeepsVisibleHardLinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for trusted.overlay.* markers and the kernel's overlayfs")
	}
	base := t.TempDir()
	l := Layers{Lowers: []string{filepath.Join(base, "lower1"), filepath.Join(base, "lower2")},
		Upper: filepath.Join(base, "upper"), Workdir: filepath.Join(base, "work")}
	for _, d := range []string{"lower1/f/e", "lower2/f", "upper/r1", "work"} {
		must(t, os.MkdirAll(filepath.Join(base, d), 0o755))
	}
	lower2 := l.Lowers[1]
	must(t, os.WriteFile(filepath.Join(lower2, "f/a"), []byte("linked a"), 0o644))
	must(t, os.Link(filepath.Join(lower2, "f/a"), filepath.Join(lower2, "f/e"))) // hidden by lower1's f/e/
	must(t, os.WriteFile(filepath.Join(lower2, "f/x"), []byte("pair"), 0o644))
	must(t, os.Link(filepath.Join(lower2, "f/x"), filepath.Join(lower2, "f/y")))
	// rename("f", "r1") as the kernel writes it with redirect_dir=on.
	must(t, unix.Lsetxattr(filepath.Join(l.Upper, "r1"), "trusted.overlay.redirect", []byte("f"), 0))
	must(t, unix.Mknod(filepath.Join(l.Upper, "f"), unix.S_IFCHR, 0))

	paths := []string{"r1/a", "r1/x", "r1/y"}
	k := kernelStat(t, l, l.Workdir, paths...)
	if k["r1/a"].Nlink != 2 || k["r1/x"].Nlink != 2 || k["r1/x"].Ino != k["r1/y"].Ino {
		t.Fatalf("the kernel's overlayfs shows r1/a with %d links, r1/x and r1/y with inodes %d and %d; want 2 links and one inode",
			k["r1/a"].Nlink, k["r1/x"].Ino, k["r1/y"].Ino)
	}

	var layer bytes.Buffer
	_, err := Export(l, &layer, ExportOptions{})
	must(t, err)
	imp := Layers{Lowers: l.Lowers, Upper: filepath.Join(base, "imported")}
	_, err = Import(bytes.NewReader(layer.Bytes()), imp.Upper, ImportOptions{})
	must(t, err)
	k = kernelStat(t, imp, t.TempDir(), paths...)
	if k["r1/x"].Nlink != 2 || k["r1/x"].Ino != k["r1/y"].Ino {
		t.Errorf("imported: r1/x and r1/y have %d links, inodes %d and %d; want one inode with 2 links", k["r1/x"].Nlink, k["r1/x"].Ino, k["r1/y"].Ino)
	}
	if k["r1/a"].Nlink != 1 {
		t.Errorf("imported: r1/a has %d links, want 1 (its other name is hidden, so not in the layer)", k["r1/a"].Nlink)
	}
}
