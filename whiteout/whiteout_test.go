package whiteout

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func openDir(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestMakeAndRecognize(t *testing.T) {
	formats := map[string]struct {
		f  Format
		ns Namespace
	}{
		"device":        {DeviceWhiteouts, Trusted},
		"xattr-user":    {XattrWhiteouts, User},
		"xattr-trusted": {XattrWhiteouts, Trusted},
	}
	for name, tc := range formats {
		t.Run(name, func(t *testing.T) {
			if os.Geteuid() != 0 && (tc.f == DeviceWhiteouts || tc.ns == Trusted) {
				t.Skip("needs root")
			}
			dir := t.TempDir()
			fd := openDir(t, dir)
			if err := Make(fd, "gone", tc.f, tc.ns); err != nil {
				t.Fatal(err)
			}
			if err := NoteWhiteout(fd, tc.f, tc.ns); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, "plain"), nil, 0o644)
			state := ReadDirState(fd, tc.ns)
			if state.Opaque {
				t.Fatal("a whiteout made its directory opaque")
			}
			if state.HasXattrWhiteout != (tc.f == XattrWhiteouts) {
				t.Fatalf("directory marked as holding xattr whiteouts: %v", state.HasXattrWhiteout)
			}
			for entry, want := range map[string]bool{"gone": true, "plain": false} {
				var st unix.Stat_t
				if err := unix.Fstatat(fd, entry, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					t.Fatal(err)
				}
				if got := IsWhiteout(fd, entry, &st, tc.ns); got != want {
					t.Errorf("IsWhiteout(%s) = %v", entry, got)
				}
			}
		})
	}
}

func TestOpaqueStates(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for trusted.overlay")
	}
	dir := t.TempDir()
	fd := openDir(t, dir)
	if err := SetOpaque(fd, Trusted); err != nil {
		t.Fatal(err)
	}
	if !ReadDirState(fd, Trusted).Opaque {
		t.Fatal("opaque=y not read")
	}
	if ReadDirState(fd, User).Opaque {
		t.Fatal("trusted marker read in the user namespace")
	}
	oci := t.TempDir()
	os.WriteFile(filepath.Join(oci, OCIOpaque), nil, 0o644)
	os.WriteFile(filepath.Join(oci, OCIPrefix+"x"), nil, 0o644)
	ofd := openDir(t, oci)
	if !IsOCIOpaque(ofd) {
		t.Fatal("OCI opaque marker not read")
	}
	if ReadDirState(ofd, Trusted).Opaque {
		t.Fatal("ReadDirState reads OCI markers, which mean nothing in an upper layer")
	}
	if !HasOCIWhiteout(ofd, "x") || HasOCIWhiteout(ofd, "y") {
		t.Fatal("OCI whiteout lookup wrong")
	}
}

func TestNames(t *testing.T) {
	for name, want := range map[string]bool{
		"trusted.overlay.opaque": true, "user.overlay.redirect": true, "trusted.overlay.union9p.id": true,
		"user.note": false, "security.selinux": false, "trusted.overlayx": false,
	} {
		if IsPrivateXattr(name) != want {
			t.Errorf("IsPrivateXattr(%q) != %v", name, want)
		}
	}
	if h, m := IsOCIMarker(".wh.foo"); !m || h != "foo" {
		t.Errorf(".wh.foo: %q %v", h, m)
	}
	if h, m := IsOCIMarker(OCIOpaque); !m || h != "" {
		t.Errorf("opq: %q %v", h, m)
	}
	if _, m := IsOCIMarker("foo"); m {
		t.Error("foo is a marker")
	}
}
