package layertool

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Import leaves out a file's fchown and fchmod when the file was created
// with them already (import_fresh.go). These are the cases where what a
// new file gets differs from the archive's, each of which must still end
// with the archive's owner and mode.

type wantMeta struct {
	mode     uint32
	uid, gid uint32
}

// freshArchive holds files whose modes the umask or a setuid bit touch,
// and files below setgid directories, one of them made setgid only after
// a file in it was written (an archive may list a directory after its
// contents).
func freshArchive(t *testing.T) ([]byte, map[string]wantMeta) {
	hdrs := []*tar.Header{
		{Name: "f0644", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "f0666", Typeflag: tar.TypeReg, Mode: 0o666},
		{Name: "f0777", Typeflag: tar.TypeReg, Mode: 0o777},
		{Name: "f0600", Typeflag: tar.TypeReg, Mode: 0o600},
		{Name: "f0400", Typeflag: tar.TypeReg, Mode: 0o400},
		{Name: "f4755", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 7},
		{Name: "f2755", Typeflag: tar.TypeReg, Mode: 0o2755, Gid: 8},
		{Name: "f1644", Typeflag: tar.TypeReg, Mode: 0o1644},
		{Name: "owned", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 1000, Gid: 1000},
		{Name: "sgid/", Typeflag: tar.TypeDir, Mode: 0o2775, Gid: 50},
		{Name: "sgid/root", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "sgid/fifty", Typeflag: tar.TypeReg, Mode: 0o644, Gid: 50},
		{Name: "late/before", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "late/", Typeflag: tar.TypeDir, Mode: 0o2755, Gid: 60},
		{Name: "late/after", Typeflag: tar.TypeReg, Mode: 0o644},
	}
	bodies := map[string]string{}
	want := map[string]wantMeta{}
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			bodies[h.Name] = "data of " + h.Name
			want[h.Name] = wantMeta{uint32(h.Mode), uint32(h.Uid), uint32(h.Gid)}
		}
	}
	return tarOf(t, hdrs, bodies), want
}

func checkFresh(t *testing.T, dir string, want map[string]wantMeta) {
	t.Helper()
	for name, w := range want {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, name), &st); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		got := wantMeta{st.Mode & 0o7777, st.Uid, st.Gid}
		if got != w {
			t.Errorf("%s: mode %04o owner %d:%d, want %04o %d:%d", name, got.mode, got.uid, got.gid, w.mode, w.uid, w.gid)
		}
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("owners are set on the host only as root")
	}
}

func TestImportOwnerAndModeAsArchived(t *testing.T) {
	requireRoot(t)
	for _, umask := range []int{0o022, 0o077, 0o002, 0} {
		t.Run(fmt.Sprintf("umask-%04o", umask), func(t *testing.T) {
			data, want := freshArchive(t)
			old := syscall.Umask(umask)
			defer syscall.Umask(old)
			dir := filepath.Join(t.TempDir(), "layer")
			if _, err := Import(bytes.NewReader(data), dir, ImportOptions{}); err != nil {
				t.Fatal(err)
			}
			checkFresh(t, dir, want)
		})
	}
}

// A default ACL on the target replaces the umask for new files: the
// created mode is then not what was asked.
func TestImportOwnerAndModeUnderDefaultACL(t *testing.T) {
	requireRoot(t)
	data, want := freshArchive(t)
	dir := filepath.Join(t.TempDir(), "layer")
	must(t, os.Mkdir(dir, 0o755))
	// system.posix_acl_default, version 2: u::rwx g::--- o::---, so that
	// a file created 0644 would get 0600.
	acl := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range []struct{ tag, perm uint16 }{{0x01, 7}, {0x04, 0}, {0x20, 0}} {
		acl = binary.LittleEndian.AppendUint16(acl, e.tag)
		acl = binary.LittleEndian.AppendUint16(acl, e.perm)
		acl = binary.LittleEndian.AppendUint32(acl, 0xffffffff)
	}
	if err := unix.Setxattr(dir, "system.posix_acl_default", acl, 0); err != nil {
		t.Fatalf("set a default ACL (needs ACL support on the test filesystem): %v", err)
	}
	if _, err := Import(bytes.NewReader(data), dir, ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	checkFresh(t, dir, want)
}

// An archive may list its root directory after files in it: a root made
// setgid then gives the files after it its group, which import must not
// take for the group it learned before.
func TestImportRootMadeSetgidLate(t *testing.T) {
	requireRoot(t)
	hdrs := []*tar.Header{
		{Name: "first", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o2755, Gid: 70},
		{Name: "second", Typeflag: tar.TypeReg, Mode: 0o644, Gid: 70},
		{Name: "third", Typeflag: tar.TypeReg, Mode: 0o644},
	}
	bodies := map[string]string{"first": "1", "second": "2", "third": "3"}
	dir := filepath.Join(t.TempDir(), "layer")
	if _, err := Import(bytes.NewReader(tarOf(t, hdrs, bodies)), dir, ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	checkFresh(t, dir, map[string]wantMeta{
		"first":  {0o644, 0, 0},
		"second": {0o644, 0, 70},
		"third":  {0o644, 0, 0},
	})
}
