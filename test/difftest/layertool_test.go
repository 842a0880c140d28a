package difftest

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/union9p/union9p/union"
	"github.com/union9p/union9p/union/layertool"
)

// The layer tools are checked against what the upper means: the merged
// trees walked before and after a random workload, through the kernel's
// overlayfs and through union. Each scenario writes an upper with one
// implementation, then runs a tool and compares.

// layerToolSeeds are few: each seed writes an upper and runs every tool.
func layerToolSeeds(t *testing.T) []int64 {
	seeds := diffConfigFromEnv(t).seeds
	if len(seeds) > 6 && os.Getenv("UNION9P_DIFF_SEEDS") == "" {
		seeds = seeds[:6]
	}
	return seeds
}

// writer writes an upper for env e and returns the merged trees before
// and after the workload.
type writer struct {
	name  string
	write func(t *testing.T, e *formatEnv, ops []op) (before, after mergedTree)
}

var upperWriters = []writer{
	{"kernel", func(t *testing.T, e *formatEnv, ops []op) (before, after mergedTree) {
		e.withKernel(t, e.work1, func(fs *kernelFS) {
			before = captureTree(fs)
			runOps(fs, ops)
			after = captureTree(fs)
		})
		return before, after
	}},
	{"union", func(t *testing.T, e *formatEnv, ops []op) (before, after mergedTree) {
		e.withUnion(t, e.work1, func(fs *unionFS) {
			before = captureTree(fs)
			runOps(fs, ops)
			after = captureTree(fs)
		})
		return before, after
	}},
}

// forEachUpper runs fn on an upper written by each writer for each seed,
// without and with redirects and metadata-only copies (which the tools
// follow: layertool_follow_test.go checks the workloads wrote some).
func forEachUpper(t *testing.T, fn func(t *testing.T, e *formatEnv, before, after mergedTree)) {
	requireOverlay(t)
	cfg := diffConfigFromEnv(t)
	for _, f := range toolFeatures {
		var marks followMarks
		for _, seed := range layerToolSeeds(t) {
			for _, w := range upperWriters {
				t.Run(fmt.Sprintf("%s/seed-%d/%s", f.name, seed, w.name), func(t *testing.T) {
					layers := generateLayers(seed)
					e := newFormatEnv(t, layers, f)
					before, after := w.write(t, e, generateOps(seed, layers, cfg.ops))
					marks.add(t, w.name, e.upper)
					fn(t, e, before, after)
					e.requireLowersUntouched(t)
				})
			}
		}
		marks.require(t, f)
	}
}

func (e *formatEnv) layers() layertool.Layers {
	return layertool.Layers{Lowers: e.lowers, Upper: e.upper, Workdir: e.work1}
}

// expectedChanges is the difference of two merged trees in diff's terms:
// paths only after are added, paths in both with another description
// changed, paths only before deleted where their parent is still a
// directory (a deleted directory's contents are implied).
func expectedChanges(before, after mergedTree) []string {
	var out []string
	for p, a := range after {
		if p == "" {
			continue
		}
		b, ok := before[p]
		switch {
		case !ok:
			out = append(out, "A /"+p)
		case a != b:
			out = append(out, "C /"+p)
		}
	}
	for p := range before {
		if _, ok := after[p]; ok || p == "" {
			continue
		}
		parent := path.Dir(p)
		if parent == "." {
			parent = ""
		}
		if isDirDescription(after[parent]) {
			out = append(out, "D /"+p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][2:] < out[j][2:] })
	return out
}

func isDirDescription(d string) bool { return strings.HasPrefix(d, "mode=004") }

func changeLines(cs []layertool.Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}

func TestLayerToolDiffEqualsTreeDifference(t *testing.T) {
	forEachUpper(t, func(t *testing.T, e *formatEnv, before, after mergedTree) {
		got, err := layertool.Diff(e.layers(), layertool.DiffOptions{Content: true})
		if err != nil {
			t.Fatal(err)
		}
		want := expectedChanges(before, after)
		if len(want) == 0 {
			t.Fatal("the workload changed nothing: the check would be empty")
		}
		t.Logf("%d changes", len(want))
		if g := changeLines(got); strings.Join(g, "\n") != strings.Join(want, "\n") {
			t.Fatalf("diff --content:\n%s\nwant (from the merged trees):\n%s\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"), lineDiff(g, want))
		}
		// Without --content, every object of the upper that hides one is
		// listed: a superset of the content diff, same A and D lines.
		all, err := layertool.Diff(e.layers(), layertool.DiffOptions{})
		if err != nil {
			t.Fatal(err)
		}
		set := map[string]bool{}
		for _, l := range changeLines(all) {
			set[l] = true
		}
		for _, l := range want {
			if !set[l] {
				t.Errorf("diff without --content lacks %q", l)
			}
		}
		for _, l := range changeLines(all) {
			if l[0] != 'C' && !contains(want, l) {
				t.Errorf("diff without --content has %q, which the trees do not show", l)
			}
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// lineDiff shows the lines only one side has.
func lineDiff(got, want []string) string {
	var b strings.Builder
	for _, g := range got {
		if !contains(want, g) {
			fmt.Fprintf(&b, "  extra:   %s\n", g)
		}
	}
	for _, w := range want {
		if !contains(got, w) {
			fmt.Fprintf(&b, "  missing: %s\n", w)
		}
	}
	return b.String()
}

var _ = union.Options{}

// exportImport exports e's upper and imports it into a new directory,
// returned, beside it.
func exportImport(t *testing.T, e *formatEnv, compression string) (layer []byte, upper string) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := layertool.Export(e.layers(), &buf, layertool.ExportOptions{Compression: compression}); err != nil {
		t.Fatalf("export: %v", err)
	}
	upper = filepath.Join(filepath.Dir(e.upper), "imported-"+compression)
	if _, err := layertool.Import(bytes.NewReader(buf.Bytes()), upper, layertool.ImportOptions{}); err != nil {
		t.Fatalf("import: %v", err)
	}
	return buf.Bytes(), upper
}

// treesOfUpper returns the merged trees of e's lowers under upper, through
// the kernel's overlayfs and through union.
func treesOfUpper(t *testing.T, e *formatEnv, upper string) (kernel, un mergedTree) {
	t.Helper()
	saved := e.upper
	defer func() { e.upper = saved }()
	e.upper = upper
	work := t.TempDir()
	e.withKernel(t, work, func(fs *kernelFS) { kernel = captureTree(fs) })
	work2 := t.TempDir()
	e.withUnion(t, work2, func(fs *unionFS) { un = captureTree(fs) })
	return kernel, un
}

func requireSameTree(t *testing.T, what string, want, got mergedTree) {
	t.Helper()
	if d := diffTrees(want, got, 5); len(d) > 0 {
		var b strings.Builder
		for _, x := range d {
			fmt.Fprintf(&b, "%s\n", x)
		}
		t.Fatalf("%s shows another tree (kernel: as written; union: %s):\n%s", what, what, b.String())
	}
}

// An upper exported and imported again onto the same lowers shows the
// same merged tree, through the kernel's overlayfs and through union; the
// export is byte-identical when repeated, compressed or not. (Lower files
// copied into the layer below a renamed directory may count fewer links:
// layertool_links_test.go.)
func TestLayerToolExportImportRoundTrip(t *testing.T) {
	forEachUpper(t, func(t *testing.T, e *formatEnv, before, after mergedTree) {
		for _, comp := range []string{"", "gzip", "zstd"} {
			layer, upper := exportImport(t, e, comp)
			var again bytes.Buffer
			if _, err := layertool.Export(e.layers(), &again, layertool.ExportOptions{Compression: comp}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(layer, again.Bytes()) {
				t.Fatalf("export %q twice gave different bytes (%d and %d)", comp, len(layer), again.Len())
			}
			kernel, un := treesOfUpper(t, e, upper)
			copied := copiedThroughRedirect(t, e.upper, after)
			requireSameTree(t, "kernel overlay of the imported upper ("+comp+")", after, withCopiedLinks(after, kernel, copied))
			requireSameTree(t, "union of the imported upper ("+comp+")", after, withCopiedLinks(after, un, copied))
		}
	})
}

// treeOfDir captures a plain directory as the kernel shows it.
func treeOfDir(t *testing.T, dir string) mergedTree {
	t.Helper()
	fs, err := openKernelFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	return captureTree(fs)
}

// withoutNlink drops the link counts of a tree's descriptions: a merged
// tree shows a lower file's count of links in its layer, some of which
// the upper may hide, while a flattened copy counts only visible names.
func withoutNlink(tree mergedTree) mergedTree {
	out := mergedTree{}
	for p, d := range tree {
		fields := strings.Fields(d)
		kept := fields[:0]
		for _, f := range fields {
			if !strings.HasPrefix(f, "nlink=") {
				kept = append(kept, f)
			}
		}
		out[p] = strings.Join(kept, " ")
	}
	return out
}

// merge writes the merged tree into a new directory: the kernel sees in it
// the tree the union showed.
func TestLayerToolMergeEqualsMergedTree(t *testing.T) {
	forEachUpper(t, func(t *testing.T, e *formatEnv, before, after mergedTree) {
		dest := filepath.Join(filepath.Dir(e.upper), "merged")
		if err := layertool.Merge(e.layers(), dest, layertool.MergeOptions{}); err != nil {
			t.Fatal(err)
		}
		requireSameTree(t, "the merged directory", withoutNlink(after), withoutNlink(treeOfDir(t, dest)))

		// In place: flatten the lowers into one, then fold the upper in.
		base := filepath.Join(filepath.Dir(e.upper), "base")
		if err := layertool.Merge(layertool.Layers{Lowers: e.lowers}, base, layertool.MergeOptions{}); err != nil {
			t.Fatal(err)
		}
		// (The root of "before" is the upper's root, the root of the
		// flattened lowers the lower's: their attributes differ.)
		wantBase, gotBase := withoutNlink(before), withoutNlink(treeOfDir(t, base))
		delete(wantBase, "")
		delete(gotBase, "")
		requireSameTree(t, "the flattened lowers", wantBase, gotBase)
		l := layertool.Layers{Lowers: []string{base}, Upper: e.upper, Workdir: e.work1}
		if err := layertool.Merge(l, "", layertool.MergeOptions{InPlace: true}); err != nil {
			// merge --in-place refuses renamed directories and
			// metadata-only copies, and only those.
			if m := countFollowMarks(t, e.upper); m.redirects+m.metacopies > 0 &&
				(strings.Contains(err.Error(), "a renamed directory") || strings.Contains(err.Error(), "a metadata-only copy")) {
				return
			}
			t.Fatal(err)
		}
		requireSameTree(t, "the lower merged in place", withoutNlink(after), withoutNlink(treeOfDir(t, base)))
		if ents, _ := os.ReadDir(e.upper); len(ents) != 0 {
			t.Fatalf("the upper is not empty after merge --in-place: %v", ents)
		}
	})
}

// vacuum changes no merged tree, through either implementation.
func TestLayerToolVacuumKeepsMergedTree(t *testing.T) {
	forEachUpper(t, func(t *testing.T, e *formatEnv, before, after mergedTree) {
		st, err := layertool.Vacuum(e.layers(), layertool.VacuumOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("vacuum removed %d objects", st.Removed)
		kernel, un := treesOfUpper(t, e, e.upper)
		requireSameTree(t, "kernel overlay after vacuum", after, kernel)
		requireSameTree(t, "union after vacuum", after, un)
		// And what remains differs from the lowers everywhere.
		all, err := layertool.Diff(e.layers(), layertool.DiffOptions{})
		if err != nil {
			t.Fatal(err)
		}
		content, err := layertool.Diff(e.layers(), layertool.DiffOptions{Content: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range changeLines(all) {
			if !contains(changeLines(content), c) && !strings.HasSuffix(c, "/") {
				t.Logf("kept after vacuum though equal: %s", c)
			}
		}
	})
}

// reset gives back the pristine base.
func TestLayerToolResetGivesBase(t *testing.T) {
	forEachUpper(t, func(t *testing.T, e *formatEnv, before, after mergedTree) {
		if err := layertool.Reset(e.layers()); err != nil {
			t.Fatal(err)
		}
		kernel, un := treesOfUpper(t, e, e.upper)
		requireSameTree(t, "kernel overlay after reset", before, kernel)
		requireSameTree(t, "union after reset", before, un)
	})
}
