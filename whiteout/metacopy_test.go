package whiteout

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMetacopyMarker(t *testing.T) {
	ns := User
	if os.Geteuid() == 0 {
		ns = Trusted
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(p, unix.O_PATH, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if mc, err := IsMetacopy(fd, ns); mc || err != nil {
		t.Fatalf("unmarked file: %v, %v", mc, err)
	}
	if err := SetMetacopy(fd, ns); err != nil {
		t.Fatal(err)
	}
	if mc, err := IsMetacopy(fd, ns); !mc || err != nil {
		t.Errorf("marked file: %v, %v", mc, err)
	}
	for v, want := range map[string]error{"\x00\x04\x00\x00": nil, "\x00\x05\x00\x00": unix.EIO, "\x01\x04\x00\x00": unix.EIO, "ab": unix.EIO} {
		if err := unix.Setxattr(p, string(ns)+"metacopy", []byte(v), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := IsMetacopy(fd, ns); err != want {
			t.Errorf("marker %q: %v, want %v", v, err, want)
		}
	}
	if err := ClearMetacopy(fd, ns); err != nil {
		t.Fatal(err)
	}
	if mc, err := IsMetacopy(fd, ns); mc || err != nil {
		t.Errorf("after ClearMetacopy: %v, %v", mc, err)
	}
}

// TestMetacopyMarkerOpenFd: a copy being built marks itself through its
// own open descriptor (no /proc walk); the value is the kernel's, empty.
func TestMetacopyMarkerOpenFd(t *testing.T) {
	ns := User
	if os.Geteuid() == 0 {
		ns = Trusted
	}
	p := filepath.Join(t.TempDir(), "f")
	fd, err := unix.Open(p, unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := SetMetacopy(fd, ns); err != nil {
		t.Fatal(err)
	}
	n, err := unix.Getxattr(p, string(ns)+"metacopy", nil)
	if err != nil || n != 0 {
		t.Fatalf("marker on %s: %d bytes, %v; want an empty value", p, n, err)
	}
	pfd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pfd)
	if mc, err := IsMetacopy(pfd, ns); !mc || err != nil {
		t.Errorf("marked through an open descriptor: %v, %v", mc, err)
	}
}
