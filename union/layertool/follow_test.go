package layertool

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// treeDump describes every object below dir: type, mode, size and data.
func treeDump(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %q", b)
		}
		lines = append(lines, line)
		return nil
	})
	must(t, err)
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// followFixture writes, as the kernel's overlayfs with redirect_dir=on and
// metacopy=on would: lower a/ renamed to b/ (redirect "a", whiteout at a),
// a nested dir a/s/ renamed across to /moved (absolute redirect "/a/s2"),
// and chmods of f and of b/data done as metadata-only copies, one of them
// (g) then renamed (absolute redirect to its data).
func followFixture(t *testing.T) (Layers, string) {
	base := t.TempDir()
	l := Layers{Lowers: []string{filepath.Join(base, "lower")}, Upper: filepath.Join(base, "upper"), Workdir: filepath.Join(base, "work")}
	for _, d := range []string{"lower/a/s2/deep", "upper/b", "work"} {
		must(t, os.MkdirAll(filepath.Join(base, d), 0o755))
	}
	for p, data := range map[string]string{
		"lower/a/data": "lower data", "lower/a/keep": "kept", "lower/f": "lower f",
		"lower/old-g": "lower g", "lower/a/s2/deep/x": "deep x", "upper/b/new": "new in b",
	} {
		must(t, os.WriteFile(filepath.Join(base, p), []byte(data), 0o644))
	}
	up := l.Upper
	must(t, unix.Mknod(filepath.Join(up, "a"), unix.S_IFCHR, 0))
	must(t, unix.Lsetxattr(filepath.Join(up, "b"), "trusted.overlay.redirect", []byte("a"), 0))
	must(t, unix.Mknod(filepath.Join(up, "b/s2"), unix.S_IFCHR, 0)) // moved away from b
	must(t, os.Mkdir(filepath.Join(up, "moved"), 0o755))
	must(t, unix.Lsetxattr(filepath.Join(up, "moved"), "trusted.overlay.redirect", []byte("/a/s2"), 0))
	mc := func(p, redirect string, size int64) {
		must(t, os.WriteFile(filepath.Join(up, p), nil, 0o600))
		must(t, os.Truncate(filepath.Join(up, p), size))
		must(t, unix.Lsetxattr(filepath.Join(up, p), "trusted.overlay.metacopy", nil, 0))
		if redirect != "" {
			must(t, unix.Lsetxattr(filepath.Join(up, p), "trusted.overlay.redirect", []byte(redirect), 0))
		}
	}
	mc("f", "", 7)
	mc("b/data", "", 10)
	mc("g", "/old-g", 7)
	must(t, unix.Mknod(filepath.Join(up, "old-g"), unix.S_IFCHR, 0))
	return l, base
}

// The merged tree the fixture means, as the kernel's overlayfs shows it.
const followMerged = `. drwxr-xr-x
b drwxr-xr-x
b/data -rw------- "lower data"
b/keep -rw-r--r-- "kept"
b/new -rw-r--r-- "new in b"
f -rw------- "lower f"
g -rw------- "lower g"
moved drwxr-xr-x
moved/deep drwxr-xr-x
moved/deep/x -rw-r--r-- "deep x"`

// diff, export (then import over the same lowers), merge and vacuum follow
// redirected directories and metadata-only copies to their lower parts.
func TestToolsFollowRedirectsAndMetacopy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for trusted.overlay.* markers")
	}
	l, base := followFixture(t)
	// The fixture means followMerged to the kernel's overlayfs too.
	mnt := filepath.Join(base, "mnt")
	must(t, os.Mkdir(mnt, 0o755))
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=on,metacopy=on,index=off", l.Lowers[0], l.Upper, l.Workdir)
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		t.Fatalf("mount -t overlay -o %s: %v", opts, err)
	}
	kernel := treeDump(t, mnt)
	must(t, unix.Unmount(mnt, 0))
	if kernel != followMerged {
		t.Fatalf("the kernel's overlayfs shows the fixture as:\n%s\nwant:\n%s", kernel, followMerged)
	}
	merge := func(l Layers, name string) string {
		dest := filepath.Join(base, name)
		must(t, Merge(l, dest, MergeOptions{}))
		return treeDump(t, dest)
	}
	if got := merge(l, "merged"); got != followMerged {
		t.Fatalf("merge:\n%s\nwant:\n%s", got, followMerged)
	}

	changes, err := Diff(l, DiffOptions{Content: true})
	must(t, err)
	var lines []string
	for _, c := range changes {
		lines = append(lines, c.String())
	}
	want := "D /a\nA /b\nA /b/data\nA /b/keep\nA /b/new\nC /f\nA /g\nA /moved\nA /moved/deep\nA /moved/deep/x\nD /old-g"
	if got := strings.Join(lines, "\n"); got != want {
		t.Errorf("diff --content:\n%s\nwant:\n%s", got, want)
	}

	var layer bytes.Buffer
	_, err = Export(l, &layer, ExportOptions{})
	must(t, err)
	imp := filepath.Join(base, "imported")
	_, err = Import(bytes.NewReader(layer.Bytes()), imp, ImportOptions{})
	must(t, err)
	l2 := Layers{Lowers: l.Lowers, Upper: imp}
	if got := merge(l2, "merged-import"); got != followMerged {
		t.Errorf("export then import over the same lowers merges to:\n%s\nwant:\n%s", got, followMerged)
	}
	if _, err := Export(Layers{Upper: l.Upper}, &bytes.Buffer{}, ExportOptions{}); err == nil ||
		!strings.Contains(err.Error(), "needs the lowers") && !strings.Contains(err.Error(), "needs its lowers") {
		t.Errorf("export without the lowers: %v, want an error asking for them", err)
	}

	_, err = Vacuum(l, VacuumOptions{})
	must(t, err)
	if got := merge(l, "merged-vacuum"); got != followMerged {
		t.Errorf("after vacuum the merged tree is:\n%s\nwant:\n%s", got, followMerged)
	}
	if _, err := Fsck(l, FsckOptions{}); err != nil {
		t.Errorf("fsck -n: %v", err)
	}
	if err := Merge(l, "", MergeOptions{InPlace: true}); err == nil || !strings.Contains(err.Error(), "renamed directory") {
		t.Errorf("merge --in-place: %v, want the refusal naming the renamed directory", err)
	}
}
