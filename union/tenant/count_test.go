package tenant

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// randomTree makes a random tree in dir: nested directories, files of
// random sizes, sparse files, hard links (within and across directories,
// some then unlinked), symbolic links, FIFOs, overlayfs whiteouts (0/0
// character devices), and a large directory that grows its own size.
func randomTree(t *testing.T, dir string, rng *rand.Rand) {
	t.Helper()
	dirs := []string{dir}
	var files []string
	pick := func(s []string) string { return s[rng.Intn(len(s))] }
	for i := range 400 {
		parent := pick(dirs)
		p := filepath.Join(parent, fmt.Sprintf("e%d", i))
		switch op := rng.Intn(10); {
		case op < 2:
			must(t, os.Mkdir(p, 0o755))
			dirs = append(dirs, p)
		case op < 5:
			must(t, os.WriteFile(p, make([]byte, rng.Intn(70000)), 0o644))
			files = append(files, p)
		case op < 6: // sparse: a hole, some data, a hole
			f, err := os.Create(p)
			must(t, err)
			_, err = f.WriteAt([]byte("data"), int64(rng.Intn(1<<24)))
			must(t, err)
			must(t, f.Truncate(int64(1<<24+rng.Intn(1<<20))))
			f.Close()
			files = append(files, p)
		case op < 7 && len(files) > 0:
			must(t, os.Link(pick(files), p))
			files = append(files, p)
		case op < 8:
			target := make([]byte, 1+rng.Intn(200))
			for j := range target {
				target[j] = 'a' + byte(rng.Intn(26))
			}
			must(t, os.Symlink(string(target), p))
		case op < 9:
			if i%2 == 0 {
				must(t, unix.Mkfifo(p, 0o644))
			} else {
				must(t, unix.Mknod(p, unix.S_IFCHR|0o000, 0)) // a whiteout
			}
		default:
			if len(files) > 0 {
				k := rng.Intn(len(files))
				os.Remove(files[k]) // may leave other links of it
				files = append(files[:k], files[k+1:]...)
			}
		}
	}
	big := filepath.Join(dir, "big")
	must(t, os.Mkdir(big, 0o755))
	for i := range 300 + rng.Intn(300) {
		must(t, os.WriteFile(filepath.Join(big, fmt.Sprintf("a-rather-long-file-name-%04d", i)), nil, 0o644))
	}
}

func TestMeasureMatchesDu(t *testing.T) {
	for seed := int64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			dir := t.TempDir()
			randomTree(t, dir, rand.New(rand.NewSource(seed)))
			got, want := measurePath(t, dir), duMeasurement(t, dir)
			if got != want {
				t.Fatalf("Measure = %+v, du = %+v", got, want)
			}
			if got.Bytes <= got.DiskBytes {
				t.Fatalf("the sparse files should make the apparent size larger than the allocation: %+v", got)
			}
		})
	}
}

func TestMeasureEmptyAndDeep(t *testing.T) {
	dir := t.TempDir()
	if got, want := measurePath(t, dir), duMeasurement(t, dir); got != want || got.Inodes != 1 {
		t.Fatalf("empty: Measure = %+v, du = %+v", got, want)
	}
	dir = tmpfsDir(t)
	// Deeper than PATH_MAX allows to name, and counted with a descriptor
	// limit far below the depth: the walk holds two whatever the depth.
	deep := 1200 // 13 kB of path
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	for i := range deep {
		name := fmt.Sprintf("level-%04d", i)
		must(t, unix.Mkdirat(fd, name, 0o755))
		f, err := unix.Openat(fd, "f", unix.O_CREAT|unix.O_WRONLY, 0o644)
		must(t, err)
		unix.Write(f, []byte("x"))
		unix.Close(f)
		nfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		must(t, err)
		unix.Close(fd)
		fd = nfd
	}
	unix.Close(fd)
	var got Measurement
	withFewFds(t, func() { got = measurePath(t, dir) })
	want := duMeasurement(t, dir)
	if got != want || got.Inodes != int64(2*deep+1) {
		t.Fatalf("deep: Measure = %+v, du = %+v", got, want)
	}
}

// A mount point inside a tree is neither counted nor entered, as du -x.
func TestMeasureSkipsMountPoints(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "f"), []byte("hello"), 0o644))
	mnt := filepath.Join(dir, "mnt")
	must(t, os.Mkdir(mnt, 0o755))
	mountTmpfs(t, mnt)
	must(t, os.WriteFile(filepath.Join(mnt, "inside"), make([]byte, 100000), 0o644))
	got, want := measurePath(t, dir), duMeasurement(t, dir)
	if got != want {
		t.Fatalf("Measure = %+v, du -x = %+v", got, want)
	}
	if got.Bytes > 100000 {
		t.Fatalf("counted the mount's content: %+v", got)
	}
}
