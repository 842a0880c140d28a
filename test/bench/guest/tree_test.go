package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestTreeTarballMatchesDir: the tarball extracts to exactly what
// WriteDir writes, and Paths counts what find would list.
func TestTreeTarballMatchesDir(t *testing.T) {
	tr := tree{Files: 1234}
	dir := filepath.Join(t.TempDir(), "tree")
	if err := tr.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	onDisk := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.IsDir() {
			onDisk[rel] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		onDisk[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(onDisk) != tr.Paths() {
		t.Errorf("%d paths on disk, Paths() = %d", len(onDisk), tr.Paths())
	}

	b, err := tr.Tarball()
	if err != nil {
		t.Fatal(err)
	}
	r := tar.NewReader(bytes.NewReader(b))
	n := 0
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		name := filepath.Clean(h.Name)
		want, ok := onDisk[name]
		switch {
		case !ok:
			t.Errorf("%s in the tarball, not on disk", name)
		case h.Typeflag == tar.TypeDir:
			if want != "dir" {
				t.Errorf("%s: a directory in the tarball, a file on disk", name)
			}
		default:
			data, _ := io.ReadAll(r)
			if string(data) != want {
				t.Errorf("%s: content differs", name)
			}
		}
	}
	if n != tr.Paths()-1 { // the root is not in the tarball
		t.Errorf("%d tarball entries, want %d", n, tr.Paths()-1)
	}
}
