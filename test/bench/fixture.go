package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The tree every server exports, as clients see it:
//
//	files/f0000 .. files/fNNNN   small files, all in lower layers (walk+getattr)
//	dir10k/e00000 ..             the large directory (readdir)
//	new/                         where creates and sequential writes go
//	seq/data                     the file read sequentially
//
// A tree is built as a stack of layers: layer 0 is the upper, the others
// are lowers, topmost first. With one layer everything is in that single
// directory, which is what diod exports and what the "single directory"
// union serves. With several, the content is spread so that every
// workload crosses layers: files/ alternates between the lowers, dir10k/
// is split round-robin over all layers, with names shadowed by higher
// layers and names hidden by whiteouts that the merge must drop, and new/
// exists in the upper and the top lower. Every stack merges to the same
// names, which checkFixture verifies through each server.
const (
	lowerFiles     = 1000  // files in files/
	bigDirEntries  = 10000 // names in dir10k/ after merging
	shadowEvery    = 20    // every 20th dir10k name also exists, hidden, in the bottom lower
	whitedOutNames = 500   // names in the bottom lower that upper whiteouts hide
	smallFileSize  = 100   // bytes in each files/ entry
	seqFileSize    = 64 << 20
	seqFileName    = "seq/data"
)

// fileName returns the name of the i-th entry of files/.
func fileName(i int) string { return fmt.Sprintf("f%04d", i) }

// bigDirName returns the name of the i-th entry of dir10k/.
func bigDirName(i int) string { return fmt.Sprintf("e%05d", i) }

// stack is a built layer stack on the host.
type stack struct {
	Upper  string   // layer 0
	Lowers []string // topmost first
	Work   string   // overlayfs-style work directory beside the upper
}

// Dir returns the single directory of a one-layer stack.
func (s stack) Dir() string { return s.Upper }

// buildStack creates root/layer0 .. root/layerN-1 and root/work with the
// bench tree spread over layers layers. seqData is hard-linked (not
// copied) into the bottom layer so that every server reads the same
// page-cached bytes.
func buildStack(root string, layers int, seqData string) (stack, error) {
	if layers < 1 {
		return stack{}, fmt.Errorf("stack of %d layers", layers)
	}
	s := stack{Upper: filepath.Join(root, "layer0"), Work: filepath.Join(root, "work")}
	dirs := []string{s.Upper}
	for i := 1; i < layers; i++ {
		d := filepath.Join(root, fmt.Sprintf("layer%d", i))
		s.Lowers = append(s.Lowers, d)
		dirs = append(dirs, d)
	}
	for _, d := range append(dirs, s.Work) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return stack{}, err
		}
	}
	bottom := dirs[len(dirs)-1]
	lowers := dirs[min(1, len(dirs)-1):] // the single dir stands in for lowers

	small := bytes.Repeat([]byte("x"), smallFileSize)
	for i := range lowerFiles {
		if err := writeFile(filepath.Join(lowers[i%len(lowers)], "files", fileName(i)), small); err != nil {
			return stack{}, err
		}
	}
	for i := range bigDirEntries {
		if err := writeFile(filepath.Join(dirs[i%len(dirs)], "dir10k", bigDirName(i)), nil); err != nil {
			return stack{}, err
		}
		if i%shadowEvery == 0 && i%len(dirs) != len(dirs)-1 && len(dirs) > 1 {
			if err := writeFile(filepath.Join(bottom, "dir10k", bigDirName(i)), []byte("shadowed")); err != nil {
				return stack{}, err
			}
		}
	}
	if len(dirs) > 1 {
		for i := range whitedOutNames {
			name := fmt.Sprintf("gone%04d", i)
			if err := writeFile(filepath.Join(bottom, "dir10k", name), nil); err != nil {
				return stack{}, err
			}
			if err := mkWhiteout(filepath.Join(s.Upper, "dir10k", name)); err != nil {
				return stack{}, err
			}
		}
	}
	for _, d := range dirs[:min(2, len(dirs))] {
		if err := os.MkdirAll(filepath.Join(d, "new"), 0o755); err != nil {
			return stack{}, err
		}
	}
	if len(dirs) > 1 {
		if err := writeFile(filepath.Join(dirs[1], "new", "from-lower"), small); err != nil {
			return stack{}, err
		}
	}
	if err := os.MkdirAll(filepath.Join(bottom, "seq"), 0o755); err != nil {
		return stack{}, err
	}
	if err := os.Link(seqData, filepath.Join(bottom, seqFileName)); err != nil {
		return stack{}, err
	}
	return s, nil
}

// writeSeqData writes the seqFileSize-byte file that all stacks link to.
func writeSeqData(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writePattern(f, seqFileSize); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writePattern writes size bytes of a non-zero pattern (no holes, nothing
// a filesystem could compress away).
func writePattern(f *os.File, size int64) error {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*7 + 1)
	}
	for size > 0 {
		n := min(size, int64(len(buf)))
		if _, err := f.Write(buf[:n]); err != nil {
			return err
		}
		size -= n
	}
	return nil
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// mkWhiteout makes an overlayfs whiteout: a 0/0 character device. The bench
// runs as root, so union9p uses this format too.
func mkWhiteout(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return unix.Mknod(path, unix.S_IFCHR, 0) // device 0/0: a whiteout
}
