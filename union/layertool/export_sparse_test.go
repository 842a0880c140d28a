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

// Sparse files leave export as GNU sparse 1.0 entries: the layer is small,
// GNU tar extracts them with their holes and their bytes, our import does
// too, and the same upper exports to the same bytes twice.
func TestExportSparseFiles(t *testing.T) {
	tarBin, err := exec.LookPath("tar")
	if err != nil {
		t.Fatal("GNU tar is needed (it is in .ci/deps):", err)
	}
	base := t.TempDir()
	upper := filepath.Join(base, "upper")
	must(t, os.MkdirAll(filepath.Join(upper, "d"), 0o755))
	const size = 64 << 20
	type piece struct {
		off  int64
		data string
	}
	files := map[string][]piece{
		// holes between data, a trailing hole, a leading hole, all hole
		"d/holes":         {{0, "head"}, {8 << 20, "middle"}, {40 << 20, "late"}},
		"leading":         {{size - 5, "tail!"}},
		"empty-but-large": nil,
		// a name too long for ustar's name field
		"d/" + strings.Repeat("n", 150): {{1 << 20, "x"}},
	}
	for name, ps := range files {
		f, err := os.Create(filepath.Join(upper, name))
		must(t, err)
		must(t, f.Truncate(size))
		for _, p := range ps {
			_, err := f.WriteAt([]byte(p.data), p.off)
			must(t, err)
		}
		must(t, f.Close())
	}
	must(t, os.WriteFile(filepath.Join(upper, "dense"), bytes.Repeat([]byte("z"), 10000), 0o644))
	when := time.Unix(1700000000, 123456789)
	must(t, os.Chtimes(filepath.Join(upper, "d/holes"), when, when))

	export := func() []byte {
		var buf bytes.Buffer
		_, err := Export(Layers{Upper: upper}, &buf, ExportOptions{})
		must(t, err)
		return buf.Bytes()
	}
	layer := export()
	if !bytes.Equal(layer, export()) {
		t.Fatal("two exports of the same upper differ")
	}
	if len(layer) > 1<<20 {
		t.Fatalf("the layer is %d bytes: the holes were written as zeros", len(layer))
	}
	out := filepath.Join(base, "layer.tar")
	must(t, os.WriteFile(out, layer, 0o644))

	check := func(who, root string) {
		t.Helper()
		for name, ps := range files {
			p := filepath.Join(root, name)
			var st unix.Stat_t
			must(t, unix.Stat(p, &st))
			if st.Size != size {
				t.Errorf("%s: %s has size %d, want %d", who, name, st.Size, size)
			}
			if st.Blocks*512 > 1<<20 {
				t.Errorf("%s: %s has %d bytes allocated: extracted dense", who, name, st.Blocks*512)
			}
			want := make([]byte, size)
			for _, pc := range ps {
				copy(want[pc.off:], pc.data)
			}
			got, err := os.ReadFile(p)
			must(t, err)
			if !bytes.Equal(got, want) {
				t.Errorf("%s: %s has other bytes than the upper's", who, name)
			}
		}
		got, err := os.ReadFile(filepath.Join(root, "dense"))
		if err != nil || !bytes.Equal(got, bytes.Repeat([]byte("z"), 10000)) {
			t.Errorf("%s: dense file: %v", who, err)
		}
		var st unix.Stat_t
		must(t, unix.Stat(filepath.Join(root, "d/holes"), &st))
		if st.Mtim.Sec != when.Unix() {
			t.Errorf("%s: d/holes mtime %v, want %v", who, st.Mtim, when)
		}
	}

	x := filepath.Join(base, "x")
	must(t, os.Mkdir(x, 0o755))
	if o, err := exec.Command(tarBin, "-xf", out, "-C", x).CombinedOutput(); err != nil {
		t.Fatalf("tar -xf: %v\n%s", err, o)
	}
	check("GNU tar", x)
	list, err := exec.Command(tarBin, "-tvf", out).CombinedOutput()
	if err != nil || !strings.Contains(string(list), " 67108864 ") || strings.Contains(string(list), "GNUSparseFile") {
		t.Errorf("tar -tvf does not list the real names and sizes: %v\n%s", err, list)
	}

	imp := filepath.Join(base, "imp")
	_, err = Import(bytes.NewReader(layer), imp, ImportOptions{})
	must(t, err)
	check("import", imp)
	var st unix.Stat_t
	must(t, unix.Stat(filepath.Join(imp, "d/holes"), &st))
	if st.Mtim.Nsec != int64(when.Nanosecond()) {
		t.Errorf("import: nanoseconds of the mtime lost: %v", st.Mtim)
	}
}
