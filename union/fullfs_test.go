package union

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A full upper filesystem answers ENOSPC, leaves no partial copy visible
// and no leftovers in the work directory, and the union keeps working.
func TestFullUpperAnswersENOSPC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	base := t.TempDir()
	lower, small := filepath.Join(base, "lower"), filepath.Join(base, "small")
	must(t, os.Mkdir(lower, 0o755))
	must(t, os.Mkdir(small, 0o755))
	big := make([]byte, 4<<20)
	for i := range big {
		big[i] = byte(i)
	}
	must(t, os.WriteFile(filepath.Join(lower, "big"), big, 0o644))
	must(t, os.WriteFile(filepath.Join(lower, "small"), []byte("s"), 0o644))
	if err := unix.Mount("tmpfs", small, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	defer unix.Unmount(small, unix.MNT_DETACH)
	up, work := filepath.Join(small, "up"), filepath.Join(small, "work")
	must(t, os.Mkdir(up, 0o755))
	must(t, os.Mkdir(work, 0o755))
	u, err := Open(Options{Lowers: []string{lower}, Upper: up, Workdir: work})
	must(t, err)
	defer u.Close()
	tu := &testUnion{Union: u}

	n := tu.mustWalk(t, "big")
	_, err = n.Open(unix.O_WRONLY)
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("copy-up of 4 MiB onto 1 MiB: %v, want ENOSPC", err)
	}
	if _, err := os.Lstat(filepath.Join(up, "big")); !os.IsNotExist(err) {
		t.Fatalf("a partial copy is visible: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(work, "work")); len(ents) != 0 {
		t.Fatalf("work dir holds %v", ents)
	}
	rf, err := n.Open(unix.O_RDONLY)
	must(t, err)
	buf := make([]byte, 4)
	_, err = rf.ReadAt(buf, 3<<20)
	rf.Close()
	if err != nil || string(buf) != string(big[3<<20:3<<20+4]) {
		t.Fatalf("the lower file no longer reads as it was: %q %v", buf, err)
	}
	// Still serving: a small change fits.
	s := tu.mustWalk(t, "small")
	must(t, s.SetAttr(SetAttr{SetMode: true, Mode: 0o600}))
	root := tu.mustWalk(t, "/")
	c, f, err := root.Create("fill", unix.O_WRONLY, 0o644, Owner{})
	must(t, err)
	defer c.Release()
	defer f.Close()
	if _, err := f.WriteAt(big, 0); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("write of 4 MiB: %v, want ENOSPC", err)
	}
}
