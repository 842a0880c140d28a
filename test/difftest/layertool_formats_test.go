package difftest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/union9p/union9p/union"
	"github.com/union9p/union9p/union/layertool"
)

// The layer tools on the formats the kernel's overlayfs of Debian 12
// cannot mount, checked through union alone: uppers written by union
// unprivileged (user.overlay.* markers, xattr whiteouts, mapped owners),
// and OCI image layers as lowers.

// unionTree captures the tree union shows of lowers under upper (none:
// read-only).
func unionTree(t *testing.T, lowers []string, upper string) mergedTree {
	t.Helper()
	opts := union.Options{Lowers: lowers}
	if upper != "" {
		opts.Upper, opts.Workdir = upper, mkTemp(t)
	}
	fs, err := openUnionFS(opts)
	if err != nil {
		t.Fatalf("union.Open: %v", err)
	}
	defer fs.Close()
	return captureTree(fs)
}

// mkTemp makes a directory beside the others (scratchDir's filesystem).
func mkTemp(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp(os.Getenv("UNION9P_TOOLS_BASE"), "tmp-")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// toolChecksThroughUnion writes an upper over lowers through union with
// ops, then checks diff, export/import, merge, vacuum and reset against
// the trees union shows.
func toolChecksThroughUnion(t *testing.T, lowers []string, ops []op) {
	t.Helper()
	upper, work := mkTemp(t), mkTemp(t)
	fs, err := openUnionFS(union.Options{Lowers: lowers, Upper: upper, Workdir: work})
	if err != nil {
		t.Fatalf("union.Open: %v", err)
	}
	before := captureTree(fs)
	runOps(fs, ops)
	after := captureTree(fs)
	fs.Close()
	l := layertool.Layers{Lowers: lowers, Upper: upper, Workdir: work}

	got, err := layertool.Diff(l, layertool.DiffOptions{Content: true})
	if err != nil {
		t.Fatal(err)
	}
	want := expectedChanges(before, after)
	if len(want) == 0 {
		t.Fatal("the workload changed nothing")
	}
	if g := changeLines(got); strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Fatalf("diff --content differs from the trees:\n%s", lineDiff(g, want))
	}

	var a, b bytes.Buffer
	if _, err := layertool.Export(l, &a, layertool.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := layertool.Export(l, &b, layertool.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("export twice gave different bytes")
	}
	imported := filepath.Join(mkTemp(t), "upper")
	if _, err := layertool.Import(bytes.NewReader(a.Bytes()), imported, layertool.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	requireSameTree(t, "union of the imported upper", after, unionTree(t, lowers, imported))

	dest := filepath.Join(mkTemp(t), "merged")
	if err := layertool.Merge(l, dest, layertool.MergeOptions{}); err != nil {
		t.Fatal(err)
	}
	requireSameTree(t, "the merged directory", ownerless(withoutNlink(after)), ownerless(withoutNlink(unionTree(t, []string{dest}, ""))))

	if _, err := layertool.Vacuum(l, layertool.VacuumOptions{}); err != nil {
		t.Fatal(err)
	}
	requireSameTree(t, "union after vacuum", after, unionTree(t, lowers, upper))
	if err := layertool.Reset(l); err != nil {
		t.Fatal(err)
	}
	// Reset gives the upper's root the top lower root's attributes; the
	// root of "before" had those of the empty upper it started from.
	requireSameTree(t, "union after reset", withoutRootAttrs(before), withoutRootAttrs(unionTree(t, lowers, upper)))
}

// ownerless drops the owners of objects that cannot carry mapped owners
// when unprivileged (symbolic links, FIFOs, devices): a copy made by an
// unprivileged process is its own. Run as root it changes nothing.
func ownerless(tree mergedTree) mergedTree {
	if os.Geteuid() == 0 {
		return tree
	}
	out := mergedTree{}
	for p, d := range tree {
		if !strings.HasPrefix(d, "mode=004") && !strings.HasPrefix(d, "mode=010") {
			fields := strings.Fields(d)
			kept := fields[:0]
			for _, f := range fields {
				if !strings.HasPrefix(f, "uid=") && !strings.HasPrefix(f, "gid=") {
					kept = append(kept, f)
				}
			}
			d = strings.Join(kept, " ")
		}
		out[p] = d
	}
	return out
}

// withoutRootAttrs keeps only the root's listing in its description.
func withoutRootAttrs(tree mergedTree) mergedTree {
	out := mergedTree{}
	for p, d := range tree {
		if p == "" {
			if i := strings.Index(d, " entries="); i >= 0 {
				d = d[i:]
			}
		}
		out[p] = d
	}
	return out
}

// readableByAll lets the unprivileged half read every lower object.
func readableByAll(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Chmod(p, mustPerm(p)|0o005)
		case d.Type().IsRegular():
			return os.Chmod(p, mustPerm(p)|0o004)
		}
		return nil
	})
	must(t, err)
}

func mustPerm(p string) os.FileMode {
	fi, err := os.Lstat(p)
	if err != nil {
		return 0
	}
	return fi.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
}

const toolsUnprivEnv = "UNION9P_TOOLS_UNPRIVILEGED_SEED"

// TestLayerToolsUnprivilegedFormat runs the checks as the user nobody, so
// that union and the tools use the unprivileged format.
func TestLayerToolsUnprivilegedFormat(t *testing.T) {
	if s := os.Getenv(toolsUnprivEnv); s != "" {
		seed, _ := strconv.ParseInt(s, 10, 64)
		base := os.Getenv("UNION9P_TOOLS_BASE")
		layers := generateLayers(seed)
		lowers := []string{filepath.Join(base, "lower1"), filepath.Join(base, "lower2")}
		toolChecksThroughUnion(t, lowers, generateOps(seed, layers, diffConfigFromEnv(t).ops))
		return
	}
	requireRoot(t)
	for _, seed := range layerToolSeeds(t)[:3] {
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			base := scratchDir(t)
			must(t, os.Chmod(base, 0o777))
			lowers := mkdirs(t, base, "lower1", "lower2")
			layers := generateLayers(seed)
			var snaps []hostSnapshot
			for i, l := range layers {
				materialize(t, l, lowers[i])
				readableByAll(t, lowers[i])
				snaps = append(snaps, snapshotHost(t, lowers[i]))
			}
			// The go tool's build directory is private to root: run a copy.
			bin := filepath.Join(base, "difftest.test")
			data, err := os.ReadFile(os.Args[0])
			must(t, err)
			must(t, os.WriteFile(bin, data, 0o755))
			cmd := exec.Command(bin, "-test.run=^TestLayerToolsUnprivilegedFormat$", "-test.v")
			cmd.Env = append(os.Environ(), toolsUnprivEnv+"="+strconv.FormatInt(seed, 10), "UNION9P_TOOLS_BASE="+base)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("unprivileged half failed: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "--- PASS") {
				t.Fatalf("the unprivileged half ran no test:\n%s", out)
			}
			for i, l := range lowers {
				requireUnchanged(t, filepath.Base(l), snaps[i], snapshotHost(t, l))
			}
		})
	}
}

// TestLayerToolsOCILowers turns the top generated lower into an OCI layer
// (export, then import --format oci), checks that union shows the same
// tree over it, then runs the checks over the OCI lower.
func TestLayerToolsOCILowers(t *testing.T) {
	requireRoot(t)
	for _, seed := range layerToolSeeds(t)[:3] {
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			base := scratchDir(t)
			t.Setenv("UNION9P_TOOLS_BASE", base)
			lowers := mkdirs(t, base, "lower1", "lower2")
			layers := generateLayers(seed)
			for i, l := range layers {
				materialize(t, l, lowers[i])
			}
			var layer bytes.Buffer
			if _, err := layertool.Export(layertool.Layers{Upper: lowers[0]}, &layer, layertool.ExportOptions{}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(layer.Bytes(), []byte(".wh.")) {
				t.Fatal("the generated lower has no whiteouts: the OCI check would be empty")
			}
			oci := filepath.Join(base, "oci1")
			if _, err := layertool.Import(&layer, oci, layertool.ImportOptions{Format: layertool.FormatOCI}); err != nil {
				t.Fatal(err)
			}
			ociLowers := []string{oci, lowers[1]}
			requireSameTree(t, "union over the OCI lower", unionTree(t, lowers, ""), unionTree(t, ociLowers, ""))
			toolChecksThroughUnion(t, ociLowers, generateOps(seed, layers, diffConfigFromEnv(t).ops))
		})
	}
}
