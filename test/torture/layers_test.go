package torture

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Sizes of the lower files: big ones make copy-ups long enough to be
// killed in the middle.
const (
	bigFiles   = 4
	bigSize    = 24 << 20
	smallFiles = 48
	treeDirs   = 6
)

// layers are the torture union's host directories.
type layers struct {
	root                  string
	lowerTop, lowerBottom string
	upper, work           string
	// bigHash is the sha256 of each big lower file ("big/bN").
	bigHash map[string]string
	// smallSize is the size of each small lower file ("small/sN").
	smallSize map[string]int64
}

func makeLayers(t *testing.T) *layers {
	t.Helper()
	root := t.TempDir()
	l := &layers{root: root,
		lowerTop: filepath.Join(root, "top"), lowerBottom: filepath.Join(root, "bottom"),
		upper: filepath.Join(root, "upper"), work: filepath.Join(root, "work"),
		bigHash: map[string]string{}, smallSize: map[string]int64{}}
	for _, d := range []string{l.lowerTop, l.lowerBottom, l.upper, l.work,
		filepath.Join(l.lowerBottom, "big"), filepath.Join(l.lowerBottom, "small"), filepath.Join(l.lowerTop, "small")} {
		must(t, os.MkdirAll(d, 0o755))
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range bigFiles {
		name := fmt.Sprintf("big/b%d", i)
		data := make([]byte, bigSize)
		for j := range data {
			data[j] = byte(rnd.Uint32())
		}
		p := filepath.Join(l.lowerBottom, name)
		must(t, os.WriteFile(p, data, 0o640))
		must(t, os.Chown(p, 1000, 1000))
		must(t, unix.Setxattr(p, "user.origin", []byte(name), 0))
		h := sha256.Sum256(data)
		l.bigHash[name] = hex.EncodeToString(h[:])
	}
	for i := range smallFiles {
		name := fmt.Sprintf("small/s%d", i)
		data := make([]byte, 1+rnd.IntN(8192))
		for j := range data {
			data[j] = byte('a' + rnd.IntN(26))
		}
		layer := l.lowerBottom
		if i%3 == 0 {
			layer = l.lowerTop // some small files come from the top lower
		}
		p := filepath.Join(layer, name)
		must(t, os.WriteFile(p, data, 0o644))
		if i%4 == 0 {
			must(t, unix.Setxattr(p, "user.tag", []byte(name), 0))
		}
		l.smallSize[name] = int64(len(data))
	}
	// A deep lower tree: creating in its leaves copies up its directories.
	for i := range treeDirs {
		d := filepath.Join(l.lowerBottom, "tree", fmt.Sprintf("d%d", i), "sub", "leaf")
		must(t, os.MkdirAll(d, 0o750))
		for j := range 4 {
			must(t, os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d", j)), []byte(d), 0o644))
		}
		must(t, os.Chown(filepath.Dir(d), 1000, 1000))
		must(t, unix.Setxattr(filepath.Dir(d), "user.dir", []byte("sub"), 0))
	}
	// The top lower hides one bottom file with a whiteout.
	must(t, unix.Mknod(filepath.Join(l.lowerTop, "small", "s1"), unix.S_IFCHR, 0))
	delete(l.smallSize, "small/s1")
	return l
}

// resetUpper empties the upper and work directories (between rounds, so
// that copy-ups of the big files happen again). The server is not running.
func (l *layers) resetUpper(t *testing.T) {
	t.Helper()
	for _, d := range []string{l.upper, l.work} {
		must(t, os.RemoveAll(d))
		must(t, os.Mkdir(d, 0o755))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
