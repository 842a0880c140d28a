package layertool

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// tarOf builds an archive from headers; a regular file's content is its
// Linkname-free body given in bodies by name.
func tarOf(t *testing.T, hdrs []*tar.Header, bodies map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		body := bodies[h.Name]
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if body != "" {
			io.WriteString(tw, body)
		}
	}
	tw.Close()
	return buf.Bytes()
}

// hostileEnv is a target directory beside an "outside" directory holding a
// secret, which no import may change or add to.
func hostileEnv(t *testing.T) (target, outside string) {
	base := t.TempDir()
	outside = filepath.Join(base, "outside")
	must(t, os.MkdirAll(outside, 0o755))
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("keep"), 0o600))
	return filepath.Join(base, "target"), outside
}

func requireOutsideUntouched(t *testing.T, outside string) {
	t.Helper()
	ents, err := os.ReadDir(outside)
	must(t, err)
	if len(ents) != 1 || ents[0].Name() != "secret" {
		t.Fatalf("something was written outside the target: %v", ents)
	}
	data, err := os.ReadFile(filepath.Join(outside, "secret"))
	must(t, err)
	if string(data) != "keep" {
		t.Fatalf("the outside file changed: %q", data)
	}
	if parent := filepath.Dir(outside); true {
		ents, _ := os.ReadDir(parent)
		for _, e := range ents {
			if e.Name() != "outside" && e.Name() != "target" {
				t.Fatalf("something was written beside the target: %s", e.Name())
			}
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestImportRefusesHostileArchives(t *testing.T) {
	reg := func(name string) *tar.Header { return &tar.Header{Typeflag: tar.TypeReg, Name: name} }
	tests := []struct {
		name    string
		hdrs    func(outside string) []*tar.Header
		mention string
	}{
		{"dot-dot", func(string) []*tar.Header { return []*tar.Header{reg("../outside/evil")} }, `".." refused`},
		{"dot-dot deep", func(string) []*tar.Header { return []*tar.Header{reg("a/b/../../../outside/evil")} }, `".." refused`},
		{"absolute", func(o string) []*tar.Header { return []*tar.Header{reg(o + "/evil")} }, "absolute"},
		{"symlink then file through it", func(o string) []*tar.Header {
			return []*tar.Header{{Typeflag: tar.TypeSymlink, Name: "s", Linkname: o}, reg("s/evil")}
		}, "symbolic link"},
		{"relative symlink then file through it", func(string) []*tar.Header {
			return []*tar.Header{{Typeflag: tar.TypeSymlink, Name: "s", Linkname: "../outside"}, reg("s/secret")}
		}, "symbolic link"},
		{"symlink dir then dir through it", func(o string) []*tar.Header {
			return []*tar.Header{{Typeflag: tar.TypeSymlink, Name: "s", Linkname: o}, {Typeflag: tar.TypeDir, Name: "s/d/"}}
		}, "symbolic link"},
		{"hard link to outside", func(string) []*tar.Header {
			return []*tar.Header{{Typeflag: tar.TypeLink, Name: "h", Linkname: "../outside/secret"}}
		}, `".." refused`},
		{"hard link to absolute", func(o string) []*tar.Header {
			return []*tar.Header{{Typeflag: tar.TypeLink, Name: "h", Linkname: o + "/secret"}}
		}, "absolute"},
		{"hard link through a symlink", func(o string) []*tar.Header {
			return []*tar.Header{{Typeflag: tar.TypeSymlink, Name: "s", Linkname: o}, {Typeflag: tar.TypeLink, Name: "h", Linkname: "s/secret"}}
		}, "symbolic link"},
		{"file over a symlink's name then write", func(o string) []*tar.Header {
			// Replacing the link must not write through it.
			return []*tar.Header{{Typeflag: tar.TypeSymlink, Name: "secret", Linkname: o + "/secret"}, reg("secret"), reg("../x")}
		}, `".." refused`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, outside := hostileEnv(t)
			data := tarOf(t, tt.hdrs(outside), map[string]string{"s/evil": "evil", "s/secret": "evil", "secret": "evil", outside + "/evil": "evil"})
			_, err := Import(bytes.NewReader(data), target, ImportOptions{})
			if err == nil {
				t.Fatal("import succeeded")
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("error %q does not say %q", err, tt.mention)
			}
			requireOutsideUntouched(t, outside)
		})
	}
}

func TestImportTruncatedArchive(t *testing.T) {
	data := tarOf(t, []*tar.Header{{Typeflag: tar.TypeReg, Name: "big"}, {Typeflag: tar.TypeReg, Name: "small"}},
		map[string]string{"big": strings.Repeat("x", 100000), "small": "y"})
	// In the first header, in the data, in the second header. (A cut
	// exactly between two entries is a complete archive to every reader
	// of the format, GNU tar included.)
	for _, cut := range []int{300, 50000, 512 + 100352 + 200} {
		target, outside := hostileEnv(t)
		_, err := Import(bytes.NewReader(data[:cut]), target, ImportOptions{})
		if err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("cut at %d: %v, want a truncated-archive error", cut, err)
		}
		requireOutsideUntouched(t, outside)
	}
}

// manyEntries streams n empty files in directories of 1000.
func manyEntries(n int) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		for i := 0; i < n; i++ {
			if i%1000 == 0 {
				tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dirName(i / 1000), Mode: 0o755})
			}
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dirName(i/1000) + "f" + itoa(i%1000), Mode: 0o644})
		}
		pw.CloseWithError(tw.Close())
	}()
	return pr
}

func dirName(i int) string { return "d" + itoa(i) + "/" }

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// Many tiny entries: memory stays bounded (nothing is kept per entry).
// 10k entries by default (CI stays fast); UNION9P_LONG=1 runs the 1e6 of
// the issue.
func TestImportManyTinyEntries(t *testing.T) {
	n := 10_000
	if os.Getenv("UNION9P_LONG") == "1" {
		n = 1_000_000
	}
	target, _ := hostileEnv(t)
	// Collect garbage promptly so that the heap in use tracks what is
	// live, and measure from what earlier tests left.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	start := time.Now()
	st, err := Import(manyEntries(n), target, ImportOptions{})
	close(stop)
	must(t, err)
	if st.Entries != n+n/1000 {
		t.Fatalf("%d entries imported, want %d", st.Entries, n+n/1000)
	}
	if _, err := os.Stat(filepath.Join(target, dirName(n/1000-1), "f999")); err != nil {
		t.Fatal(err)
	}
	grew := int64(peak.Load()) - int64(ms0.HeapInuse)
	t.Logf("%d entries in %v, heap grew by at most %d MiB", n, time.Since(start), grew>>20)
	if grew > 32<<20 {
		t.Fatalf("heap grew by %d MiB for %d entries: memory grows with the entry count", grew>>20, n)
	}
}
