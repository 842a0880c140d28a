package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// tree is the benchmark's content, the shape of a source tree: Files
// regular files of 0 to maxFileSize-1 bytes (a fixed pseudo-random
// sequence), filesPerDir to a leaf directory, leavesPerTop leaves to a
// top-level directory:
//
//	d00/s0/f00000 .. d00/s0/f00099, d00/s1/f00100, ..., d01/s0/f01000, ...
//
// The same tree is written on the host as the union's lower and as the
// directory QEMU exports (where find | xargs stat walks it), and as the
// tarball that tar x extracts in the guest.
type tree struct {
	Files int
}

const (
	filesPerDir  = 100
	leavesPerTop = 10
	maxFileSize  = 4096
)

// treeTime is the modification time of every entry in the tarball.
var treeTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// treeEntry is a directory (Data nil) or a regular file.
type treeEntry struct {
	Path string // slash-separated, relative to the tree's root
	Dir  bool
	Data []byte
}

// walk calls fn for every entry, parents before children, in a fixed
// order with fixed contents.
func (t tree) walk(fn func(treeEntry) error) error {
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range t.Files {
		top, leaf := i/(filesPerDir*leavesPerTop), i/filesPerDir%leavesPerTop
		if i%(filesPerDir*leavesPerTop) == 0 {
			if err := fn(treeEntry{Path: fmt.Sprintf("d%02d", top), Dir: true}); err != nil {
				return err
			}
		}
		if i%filesPerDir == 0 {
			if err := fn(treeEntry{Path: fmt.Sprintf("d%02d/s%d", top, leaf), Dir: true}); err != nil {
				return err
			}
		}
		name := fmt.Sprintf("d%02d/s%d/f%05d", top, leaf, i)
		if err := fn(treeEntry{Path: name, Data: fileData(i, rng.IntN(maxFileSize))}); err != nil {
			return err
		}
	}
	return nil
}

// fileData returns size bytes of text (compressible, like source code:
// the initramfs that carries the tarball is gzipped).
func fileData(i, size int) []byte {
	var b bytes.Buffer
	for line := 0; b.Len() < size; line++ {
		fmt.Fprintf(&b, "file %05d line %03d: the quick brown fox jumps over the lazy dog\n", i, line)
	}
	return b.Bytes()[:size]
}

// Paths returns how many paths `find ROOT` lists: the root, the
// directories and the files.
func (t tree) Paths() int {
	n := 1
	t.walk(func(treeEntry) error { n++; return nil })
	return n
}

// WriteDir writes the tree under root, which must not exist yet.
func (t tree) WriteDir(root string) error {
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	return t.walk(func(e treeEntry) error {
		p := filepath.Join(root, filepath.FromSlash(e.Path))
		if e.Dir {
			return os.Mkdir(p, 0o755)
		}
		return os.WriteFile(p, e.Data, 0o644)
	})
}

// Tarball returns the tree as a ustar archive, owned by root, with
// names relative to the tree's root.
func (t tree) Tarball() ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := t.walk(func(e treeEntry) error {
		h := &tar.Header{Name: e.Path, Mode: 0o644, ModTime: treeTime, Uname: "root", Gname: "root", Format: tar.FormatUSTAR}
		if e.Dir {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, e.Path+"/", 0o755
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(e.Data)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
