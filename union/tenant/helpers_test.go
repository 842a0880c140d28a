package tenant

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// du runs GNU du -s -x with args on dir and returns its figure.
func du(t *testing.T, dir string, args ...string) int64 {
	t.Helper()
	out, err := exec.Command("du", append(append([]string{"-s", "-x"}, args...), dir)...).Output()
	if err != nil {
		t.Fatalf("du %v %s: %v", args, dir, err)
	}
	f := strings.Fields(string(out))
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		t.Fatalf("du output %q: %v", out, err)
	}
	return n
}

// duMeasurement is what du says Measure must find in dir.
func duMeasurement(t *testing.T, dir string) Measurement {
	t.Helper()
	return Measurement{
		Usage: Usage{
			Bytes:  du(t, dir, "--apparent-size", "--block-size=1"),
			Inodes: du(t, dir, "--inodes"),
		},
		DiskBytes: du(t, dir, "--block-size=1"),
	}
}

// measurePath runs Measure on the directory at path.
func measurePath(t *testing.T, path string) Measurement {
	t.Helper()
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	m, err := Measure(fd)
	if err != nil {
		t.Fatalf("Measure %s: %v", path, err)
	}
	return m
}

// sentinel makes a directory outside everything under test, with a file
// and a subdirectory, and returns it and a check that it is unchanged.
func sentinel(t *testing.T) (dir string, check func()) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "outside")
	must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "keep"), []byte("precious"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "sub", "keep2"), []byte("precious too"), 0o644))
	return dir, func() {
		t.Helper()
		for _, f := range []struct{ p, want string }{{"keep", "precious"}, {"sub/keep2", "precious too"}} {
			got, err := os.ReadFile(filepath.Join(dir, f.p))
			if err != nil || !bytes.Equal(got, []byte(f.want)) {
				t.Errorf("sentinel %s outside the tenants directory changed: %q, %v", f.p, got, err)
			}
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// mountTmpfs mounts a tmpfs on dir until the test ends.
func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root to mount (the tests run as root)")
	}
	must(t, unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64m"))
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
}

// withFewFds runs fn with the descriptor limit set 16 above the number of
// descriptors open now (the tests do not run in parallel).
func withFewFds(t *testing.T, fn func()) {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	must(t, err)
	var old unix.Rlimit
	must(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &old))
	low := old
	low.Cur = uint64(len(ents) + 16)
	must(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &low))
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
	fn()
}

// tmpfsDir returns a new directory on a tmpfs of its own: for the tests
// that make thousands of directories, which a loaded disk makes slow.
func tmpfsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	mountTmpfs(t, dir)
	return dir
}
