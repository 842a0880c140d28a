package layertool

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// GNU tar lists an exported layer with its .wh. entries and unpacks it.
func TestExportReadsWithGNUTar(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for device whiteouts and trusted.overlay")
	}
	tarBin, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("no tar")
	}
	base := t.TempDir()
	lower, upper := filepath.Join(base, "lower"), filepath.Join(base, "upper")
	for _, p := range []string{"lower/gone", "lower/d/old", "upper/d/new", "upper/sparse"} {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(base, p)), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(lower, "gone"), []byte("x"), 0o644))
	must(t, os.WriteFile(filepath.Join(lower, "d/old"), []byte("x"), 0o644))
	must(t, unix.Mknod(filepath.Join(upper, "gone"), unix.S_IFCHR, 0))
	must(t, os.WriteFile(filepath.Join(upper, "d/new"), []byte("new\n"), 0o640))
	must(t, unix.Setxattr(filepath.Join(upper, "d"), "trusted.overlay.opaque", []byte("y"), 0))
	must(t, os.Link(filepath.Join(upper, "d/new"), filepath.Join(upper, "hard")))
	f, err := os.Create(filepath.Join(upper, "sparse"))
	must(t, err)
	must(t, f.Truncate(16<<20))
	f.WriteAt([]byte("end"), 1<<20)
	f.Close()

	out := filepath.Join(base, "layer.tar")
	var buf bytes.Buffer
	_, err = Export(Layers{Lowers: []string{lower}, Upper: upper}, &buf, ExportOptions{})
	must(t, err)
	must(t, os.WriteFile(out, buf.Bytes(), 0o644))
	list, err := exec.Command(tarBin, "-tvf", out).CombinedOutput()
	if err != nil {
		t.Fatalf("tar -tvf: %v\n%s", err, list)
	}
	for _, want := range []string{" .wh.gone", " d/.wh..wh..opq", " d/new", " hard link to d/new", "-rw-r----- 0/0"} {
		if !strings.Contains(string(list), want) {
			t.Errorf("tar -tvf does not list %q:\n%s", want, list)
		}
	}
	x := filepath.Join(base, "x")
	must(t, os.Mkdir(x, 0o755))
	if o, err := exec.Command(tarBin, "-xf", out, "-C", x).CombinedOutput(); err != nil {
		t.Fatalf("tar -xf: %v\n%s", err, o)
	}
	data, err := os.ReadFile(filepath.Join(x, "d/new"))
	if err != nil || string(data) != "new\n" {
		t.Fatalf("d/new unpacked by GNU tar: %q %v", data, err)
	}
	// import keeps the sparse file sparse (export_sparse_test.go checks
	// the sparse entries in detail).
	imp := filepath.Join(base, "imp")
	_, err = Import(bytes.NewReader(buf.Bytes()), imp, ImportOptions{})
	must(t, err)
	var st unix.Stat_t
	must(t, unix.Stat(filepath.Join(imp, "sparse"), &st))
	if st.Size != 16<<20 || st.Blocks*512 > 1<<20 {
		t.Fatalf("sparse file imported with size %d, %d bytes allocated", st.Size, st.Blocks*512)
	}
	must(t, unix.Lstat(filepath.Join(imp, "gone"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf(".wh.gone imported as mode %o rdev %d, want a 0/0 whiteout", st.Mode, st.Rdev)
	}
	if v, err := getXattrPath(filepath.Join(imp, "d"), "trusted.overlay.opaque"); err != nil || v != "y" {
		t.Fatalf("d not opaque after import: %q %v", v, err)
	}
	var a, b unix.Stat_t
	must(t, unix.Lstat(filepath.Join(imp, "d/new"), &a))
	must(t, unix.Lstat(filepath.Join(imp, "hard"), &b))
	if a.Ino != b.Ino {
		t.Fatal("the hard link was not kept")
	}
}

func getXattrPath(p, name string) (string, error) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// With Mtime set, two uppers that differ only in their times export to
// the same bytes (reproducible builds); without it they differ.
func TestExportMtimeIsReproducible(t *testing.T) {
	mk := func(when time.Time) string {
		dir := filepath.Join(t.TempDir(), "upper")
		must(t, os.MkdirAll(filepath.Join(dir, "d"), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "d/f"), []byte("same"), 0o644))
		for _, p := range []string{"d/f", "d", "."} {
			must(t, os.Chtimes(filepath.Join(dir, p), when, when))
		}
		return dir
	}
	a, b := mk(time.Unix(1e9, 0)), mk(time.Unix(2e9, 5))
	export := func(dir string, mtime time.Time) []byte {
		var buf bytes.Buffer
		_, err := Export(Layers{Upper: dir}, &buf, ExportOptions{Mtime: mtime, Compression: "gzip"})
		must(t, err)
		return buf.Bytes()
	}
	if bytes.Equal(export(a, time.Time{}), export(b, time.Time{})) {
		t.Fatal("uppers with other times exported the same bytes without --mtime")
	}
	epoch := time.Unix(1700000000, 0)
	if !bytes.Equal(export(a, epoch), export(b, epoch)) {
		t.Fatal("with --mtime the exports differ")
	}
}
