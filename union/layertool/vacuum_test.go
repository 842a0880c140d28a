package layertool

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Copies equal to their lower objects go, their directory with them when
// it is left empty and equals its lower one; a changed copy stays.
func TestVacuumDropsUnchangedCopies(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to copy owners")
	}
	base := t.TempDir()
	lower, upper, work := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work")
	for _, d := range []string{"lower/d/e", "upper", "work"} {
		must(t, os.MkdirAll(filepath.Join(base, d), 0o755))
	}
	for _, f := range []string{"d/same", "d/e/same", "changed"} {
		must(t, os.WriteFile(filepath.Join(lower, f), []byte("lower "+f), 0o644))
	}
	// A copy-up as union makes it: contents, owners, modes, times kept.
	for _, p := range []string{"d", "changed"} {
		if out, err := exec.Command("cp", "-a", filepath.Join(lower, p), upper+"/").CombinedOutput(); err != nil {
			t.Fatalf("cp -a: %v %s", err, out)
		}
	}
	must(t, os.WriteFile(filepath.Join(upper, "changed"), []byte("new"), 0o644))
	l := Layers{Lowers: []string{lower}, Upper: upper, Workdir: work}
	st, err := Vacuum(l, VacuumOptions{})
	must(t, err)
	// d/same, d/e/same, d/e, d.
	if st.Removed != 4 {
		t.Errorf("removed %d objects, want 4", st.Removed)
	}
	ents, err := os.ReadDir(upper)
	must(t, err)
	if len(ents) != 1 || ents[0].Name() != "changed" {
		t.Fatalf("upper holds %v after vacuum, want only the changed file", ents)
	}
}
