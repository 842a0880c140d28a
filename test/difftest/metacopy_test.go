package difftest

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMetacopyIsExercised checks that the default seeds, run with
// metacopy=on, leave metadata-only copies in the upper (some renamed or
// linked, so found by a redirect): without them the metacopy runs of
// TestDifferential would compare full copy-ups only.
func TestMetacopyIsExercised(t *testing.T) {
	requireRoot(t)
	counts := map[string]int{}
	for seed := int64(1); seed <= 24; seed++ {
		upper := seedUpper(t, seed, metacopyFeatures)
		err := filepath.Walk(upper, func(p string, fi os.FileInfo, err error) error {
			if err != nil || !fi.Mode().IsRegular() {
				return err
			}
			if _, err := unix.Lgetxattr(p, "trusted.overlay.metacopy", nil); err == nil {
				counts["metacopy"]++
				if _, err := unix.Lgetxattr(p, "trusted.overlay.redirect", nil); err == nil {
					counts["metacopy with redirect"]++
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("metadata-only copies left in the uppers of seeds 1-24: %v", counts)
	if counts["metacopy"] < 5 || counts["metacopy with redirect"] < 2 {
		t.Errorf("too few metadata-only copies: %v, want at least 5, 2 of them redirected", counts)
	}
}

// TestHostileMetacopy plants metadata-only copies in the upper whose data
// is missing, of the wrong type, behind a bad redirect or with a malformed
// marker, and checks that union answers as the kernel's overlayfs does
// (EIO: never served as an empty file), with metacopy on and off.
func TestHostileMetacopy(t *testing.T) {
	requireOverlay(t)
	cases := []struct {
		name, redirect, marker string
	}{
		{"data-below", "", ""},
		{"data-missing", "", ""},
		{"data-is-dir", "", ""},
		{"redirect-to-data", "/x/data", ""},
		{"redirect-missing", "/nonexistent", ""},
		{"redirect-dotdot", "/../secret", ""},
		{"redirect-to-dir", "/x", ""},
		{"bad-marker", "", "ab"},
		{"marker-v0", "", "\x00\x04\x00\x00"},
	}
	for _, f := range []features{metacopyFeatures, redirectFeatures} {
		for _, c := range cases {
			t.Run(f.name+"/"+c.name, func(t *testing.T) {
				build := func(root string) (lowers []string, upper, work string) {
					ds := mkdirs(t, root, "lower1", "lower2", "upper", "work")
					must(t, os.MkdirAll(filepath.Join(ds[1], "x"), 0o755))
					must(t, os.WriteFile(filepath.Join(ds[1], "x/data"), []byte("lower data\n"), 0o644))
					must(t, os.WriteFile(filepath.Join(ds[1], "secret"), []byte("x\n"), 0o600))
					must(t, os.MkdirAll(filepath.Join(ds[0], "top"), 0o755))
					switch c.name {
					case "data-below", "bad-marker", "marker-v0":
						must(t, os.WriteFile(filepath.Join(ds[1], "f"), []byte("f data\n"), 0o644))
					case "data-is-dir":
						must(t, os.Mkdir(filepath.Join(ds[1], "f"), 0o755))
					}
					p := filepath.Join(ds[2], "f")
					must(t, os.WriteFile(p, nil, 0o640))
					must(t, os.Truncate(p, 7))
					must(t, unix.Setxattr(p, "trusted.overlay.metacopy", []byte(c.marker), 0))
					if c.redirect != "" {
						must(t, unix.Setxattr(p, "trusted.overlay.redirect", []byte(c.redirect), 0))
					}
					return ds[:2], ds[2], ds[3]
				}
				dir := scratchDir(t)
				kl, ku, kw := build(mkdirs(t, dir, "k")[0])
				ul, uu, uw := build(mkdirs(t, dir, "u")[0])
				mnt := mkdirs(t, dir, "mnt")[0]
				unmount := mountOverlay(t, kl, ku, kw, mnt, f)
				k, err := openKernelFS(mnt)
				if err != nil {
					t.Fatal(err)
				}
				u, err := openUnionFS(f.options(ul, uu, uw))
				if err != nil {
					t.Fatal(err)
				}
				defer u.Close()
				for _, d := range diffTrees(captureTree(k), captureTree(u), 0) {
					if c.name == "redirect-to-data" && d.Path == "x/data" {
						// The kernel shows one lower file under two names
						// with one inode, the metadata of whichever name it
						// looked up first (f here); union shows each
						// name's own.
						continue
					}
					t.Errorf("%s", d)
				}
				k.Close()
				if err := unmount(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}
