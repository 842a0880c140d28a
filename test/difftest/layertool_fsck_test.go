package difftest

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/union9p/union9p/union/layertool"
	"golang.org/x/sys/unix"
)

// fsck finds each planted fault with -n (changing nothing), repairs it
// with -y (exit 1, then 0 on a second run), and afterwards the kernel's
// overlayfs mounts the layers and shows the tree union shows.

// fsckEnv: a lower with files and directories, an upper with a few
// ordinary changes, a work directory.
func fsckEnv(t *testing.T) *formatEnv {
	t.Helper()
	dir := scratchDir(t)
	e := &formatEnv{lowers: mkdirs(t, dir, "lower"), features: plainFeatures}
	dirs := mkdirs(t, dir, "upper", "work1", "work2", "mnt")
	e.upper, e.work1, e.work2, e.mnt = dirs[0], dirs[1], dirs[2], dirs[3]
	lower := e.lowers[0]
	for _, p := range []string{"d/x", "r/y", "a", "m"} {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(lower, p)), 0o755))
		must(t, os.WriteFile(filepath.Join(lower, p), []byte("lower "+p+"\n"), 0o644))
	}
	must(t, os.Mkdir(filepath.Join(e.upper, "d"), 0o755))
	must(t, os.WriteFile(filepath.Join(e.upper, "d/new"), []byte("new\n"), 0o644))
	must(t, unix.Mknod(filepath.Join(e.upper, "a"), unix.S_IFCHR, 0)) // a real whiteout
	e.lowersBefore = append(e.lowersBefore, snapshotHost(t, lower))
	return e
}

func TestFsckFaults(t *testing.T) {
	requireOverlay(t)
	faults := []struct {
		name    string
		plant   func(t *testing.T, e *formatEnv)
		mention string
		check   func(t *testing.T, e *formatEnv) // after the repair
	}{
		{"whiteout over nothing", func(t *testing.T, e *formatEnv) {
			must(t, unix.Mknod(filepath.Join(e.upper, "d/ghost"), unix.S_IFCHR, 0))
		}, "/d/ghost: whiteout over nothing", func(t *testing.T, e *formatEnv) {
			if _, err := os.Lstat(filepath.Join(e.upper, "d/ghost")); err == nil {
				t.Fatal("the whiteout is still there")
			}
		}},
		{"leftovers in the work directory", func(t *testing.T, e *formatEnv) {
			must(t, os.MkdirAll(filepath.Join(e.work1, "work/#1f"), 0o700))
			must(t, os.WriteFile(filepath.Join(e.work1, "work/#1f/half"), []byte("x"), 0o600))
			must(t, os.WriteFile(filepath.Join(e.work1, "work/#20"), []byte("x"), 0o600))
		}, "workdir:work/#1f: leftover", func(t *testing.T, e *formatEnv) {
			if ents, _ := os.ReadDir(filepath.Join(e.work1, "work")); len(ents) != 0 {
				t.Fatalf("work dir still holds %v", ents)
			}
		}},
		{"redirect pointing nowhere", func(t *testing.T, e *formatEnv) {
			p := filepath.Join(e.upper, "r")
			must(t, os.Mkdir(p, 0o755))
			must(t, unix.Lsetxattr(p, "trusted.overlay.redirect", []byte("/no/such/dir"), 0))
		}, `/r: redirect "/no/such/dir" points at no lower directory`, func(t *testing.T, e *formatEnv) {
			requireNoXattr(t, filepath.Join(e.upper, "r"), "trusted.overlay.redirect")
		}},
		{"redirect pointing outside", func(t *testing.T, e *formatEnv) {
			p := filepath.Join(e.upper, "r")
			must(t, os.Mkdir(p, 0o755))
			must(t, unix.Lsetxattr(p, "trusted.overlay.redirect", []byte("/../../etc"), 0))
		}, "points outside the layers", func(t *testing.T, e *formatEnv) {
			requireNoXattr(t, filepath.Join(e.upper, "r"), "trusted.overlay.redirect")
		}},
		{"origin that cannot be parsed", func(t *testing.T, e *formatEnv) {
			copyFile(t, filepath.Join(e.lowers[0], "m"), filepath.Join(e.upper, "m"))
			must(t, unix.Lsetxattr(filepath.Join(e.upper, "m"), "trusted.overlay.origin", []byte("garbage"), 0))
		}, "/m: origin xattr of 7 bytes cannot be parsed", func(t *testing.T, e *formatEnv) {
			requireNoXattr(t, filepath.Join(e.upper, "m"), "trusted.overlay.origin")
		}},
		{"origin pointing nowhere", func(t *testing.T, e *formatEnv) {
			// The handle of a lower file that is then deleted.
			gone := filepath.Join(e.lowers[0], "gone")
			must(t, os.WriteFile(gone, nil, 0o644))
			h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, gone, 0)
			must(t, err)
			must(t, os.Remove(gone))
			e.lowersBefore[0] = snapshotHost(t, e.lowers[0])
			fb := append([]byte{0, 0xfb, byte(21 + len(h.Bytes())), 0, byte(h.Type())}, make([]byte, 16)...)
			fb = append(fb, h.Bytes()...)
			copyFile(t, filepath.Join(e.lowers[0], "m"), filepath.Join(e.upper, "m"))
			must(t, unix.Lsetxattr(filepath.Join(e.upper, "m"), "trusted.overlay.origin", fb, 0))
		}, "/m: origin names no object of a lower layer", func(t *testing.T, e *formatEnv) {
			requireNoXattr(t, filepath.Join(e.upper, "m"), "trusted.overlay.origin")
		}},
		{"metacopy without lower data", func(t *testing.T, e *formatEnv) {
			p := filepath.Join(e.upper, "d/meta")
			f, err := os.Create(p)
			must(t, err)
			must(t, f.Truncate(4096))
			f.Close()
			must(t, unix.Lsetxattr(p, "trusted.overlay.metacopy", nil, 0))
		}, "/d/meta: metacopy file without lower data", func(t *testing.T, e *formatEnv) {
			if _, err := os.Lstat(filepath.Join(e.upper, "d/meta")); err == nil {
				t.Fatal("the data-less metacopy file is still there")
			}
		}},
		{"opaque marker in the wrong namespace", func(t *testing.T, e *formatEnv) {
			must(t, unix.Lsetxattr(filepath.Join(e.upper, "d"), "user.overlay.opaque", []byte("y"), 0))
		}, "/d: user.overlay.opaque is in the wrong namespace", func(t *testing.T, e *formatEnv) {
			requireNoXattr(t, filepath.Join(e.upper, "d"), "user.overlay.opaque")
			v := make([]byte, 8)
			n, err := unix.Lgetxattr(filepath.Join(e.upper, "d"), "trusted.overlay.opaque", v)
			if err != nil || string(v[:n]) != "y" {
				t.Fatalf("trusted.overlay.opaque = %q, %v", v[:n], err)
			}
		}},
		{"mapped owner that cannot be parsed", func(t *testing.T, e *formatEnv) {
			must(t, unix.Lsetxattr(filepath.Join(e.upper, "d/new"), "user.virtfs.uid", []byte{1, 2, 3}, 0))
			var b [4]byte
			binary.NativeEndian.PutUint32(b[:], 0o644)
			must(t, unix.Lsetxattr(filepath.Join(e.upper, "d/new"), "user.virtfs.mode", b[:], 0))
		}, "/d/new: mapped owner user.virtfs.uid of 3 bytes", func(t *testing.T, e *formatEnv) {
			requireNoXattr(t, filepath.Join(e.upper, "d/new"), "user.virtfs.uid")
		}},
	}
	for _, ft := range faults {
		t.Run(strings.ReplaceAll(ft.name, " ", "-"), func(t *testing.T) {
			e := fsckEnv(t)
			l := layertool.Layers{Lowers: e.lowers, Upper: e.upper, Workdir: e.work1}
			clean, err := layertool.Fsck(l, layertool.FsckOptions{})
			must(t, err)
			if len(clean.Problems) != 0 {
				t.Fatalf("fsck finds problems before the fault is planted: %v", clean.Problems)
			}
			ft.plant(t, e)
			upper, work := snapshotHost(t, e.upper), snapshotHost(t, e.work1)
			res, err := layertool.Fsck(l, layertool.FsckOptions{})
			must(t, err)
			if res.ExitCode() != 4 || len(res.Problems) == 0 || !strings.Contains(res.Problems[0].String(), ft.mention) {
				t.Fatalf("fsck -n: exit %d, %v; want one saying %q", res.ExitCode(), res.Problems, ft.mention)
			}
			requireUnchanged(t, "upper after fsck -n", upper, snapshotHost(t, e.upper))
			requireUnchanged(t, "workdir after fsck -n", work, snapshotHost(t, e.work1))
			res, err = layertool.Fsck(l, layertool.FsckOptions{Repair: true})
			must(t, err)
			if res.ExitCode() != 1 {
				t.Fatalf("fsck -y: exit %d, %v", res.ExitCode(), res.Problems)
			}
			ft.check(t, e)
			res, err = layertool.Fsck(l, layertool.FsckOptions{})
			must(t, err)
			if res.ExitCode() != 0 {
				t.Fatalf("fsck after the repair: exit %d, %v", res.ExitCode(), res.Problems)
			}
			var kernel, un mergedTree
			e.withKernel(t, e.work1, func(fs *kernelFS) { kernel = captureTree(fs) })
			e.withUnion(t, e.work2, func(fs *unionFS) { un = captureTree(fs) })
			requireSameTree(t, "union after the repair", kernel, un)
			e.requireLowersUntouched(t)
		})
	}
}

func requireNoXattr(t *testing.T, p, name string) {
	t.Helper()
	if _, err := unix.Lgetxattr(p, name, nil); err != unix.ENODATA {
		t.Fatalf("%s still has %s (%v)", p, name, err)
	}
}

// copyFile copies data, mode and times, as a copy-up would.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	must(t, err)
	must(t, os.WriteFile(to, data, 0o644))
	var st unix.Stat_t
	must(t, unix.Lstat(from, &st))
	must(t, unix.UtimesNano(to, []unix.Timespec{st.Atim, st.Mtim}))
}

// What the kernel's overlayfs and union write is healthy: fsck finds
// nothing in it (the kernel's origin file handles included).
func TestFsckFindsNothingInHealthyUppers(t *testing.T) {
	forEachUpper(t, func(t *testing.T, e *formatEnv, before, after mergedTree) {
		res, err := layertool.Fsck(e.layers(), layertool.FsckOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Problems) > 0 {
			t.Fatalf("fsck finds problems in a healthy upper: %v", res.Problems)
		}
	})
}

// Markers that point where they should are left alone.
func TestFsckAcceptsValidMarkers(t *testing.T) {
	requireRoot(t)
	e := fsckEnv(t)
	for name, redirect := range map[string]string{"moved": "/r", "near": "r"} {
		p := filepath.Join(e.upper, name)
		must(t, os.Mkdir(p, 0o755))
		must(t, unix.Lsetxattr(p, "trusted.overlay.redirect", []byte(redirect), 0))
	}
	meta := filepath.Join(e.upper, "m")
	f, err := os.Create(meta)
	must(t, err)
	f.Close()
	must(t, unix.Lsetxattr(meta, "trusted.overlay.metacopy", nil, 0))
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, filepath.Join(e.lowers[0], "m"), 0)
	must(t, err)
	fb := append([]byte{0, 0xfb, byte(21 + len(h.Bytes())), 0, byte(h.Type())}, make([]byte, 16)...)
	must(t, unix.Lsetxattr(meta, "trusted.overlay.origin", append(fb, h.Bytes()...), 0))
	res, err := layertool.Fsck(layertool.Layers{Lowers: e.lowers, Upper: e.upper, Workdir: e.work1}, layertool.FsckOptions{})
	must(t, err)
	if len(res.Problems) != 0 {
		t.Fatalf("fsck flags valid markers: %v", res.Problems)
	}
}
