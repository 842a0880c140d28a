package layertool

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// An upper with a renamed directory (redirect) or a metadata-only copy is
// refused by the tools that would read it as whole objects, with a
// message naming the path, and left as it was; fsck reads it.
func TestToolsRefuseRedirectsAndMetacopy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for trusted.overlay.* markers")
	}
	for _, c := range []struct {
		name, path, attr, value, want string
	}{
		{"redirect", "b", "trusted.overlay.redirect", "a", "/b: a renamed directory"},
		{"metacopy", "f", "trusted.overlay.metacopy", "", "/f: a metadata-only copy"},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			lower, upper, work := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work")
			for _, d := range []string{"lower/a", "upper/b", "work"} {
				must(t, os.MkdirAll(filepath.Join(base, d), 0o755))
			}
			must(t, os.WriteFile(filepath.Join(lower, "a", "data"), []byte("lower data"), 0o644))
			must(t, os.WriteFile(filepath.Join(lower, "f"), []byte("lower f"), 0o644))
			if c.name == "metacopy" {
				must(t, os.WriteFile(filepath.Join(upper, "f"), nil, 0o600))
				must(t, os.Truncate(filepath.Join(upper, "f"), 7))
			}
			must(t, unix.Lsetxattr(filepath.Join(upper, c.path), c.attr, []byte(c.value), 0))
			l := Layers{Lowers: []string{lower}, Upper: upper, Workdir: work}

			check := func(tool string, err error) {
				t.Helper()
				if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), tool) {
					t.Errorf("%s: error %v, want one saying %q and naming %s", tool, err, c.want, tool)
				}
			}
			_, err := Diff(l, DiffOptions{})
			check("diff", err)
			var out bytes.Buffer
			_, err = Export(l, &out, ExportOptions{})
			check("export", err)
			err = Merge(l, filepath.Join(base, "merged"), MergeOptions{})
			check("merge", err)
			_, err = Vacuum(l, VacuumOptions{})
			check("vacuum", err)
			if _, err := os.Stat(filepath.Join(upper, c.path)); err != nil {
				t.Errorf("the refused tools changed the upper: %v", err)
			}
			if _, err := Fsck(l, FsckOptions{}); err != nil {
				t.Errorf("fsck -n on a valid %s: %v", c.name, err)
			}
		})
	}
}
