package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Over virtiofs a write-only open is direct-io (qemu/virtfs/directio.go):
// its writes bypass the guest's page cache, and the open after them must
// drop that cache. These checks run on the virtiofs mount only.

// checkDirectWriteReopen: a file is read through one descriptor (its
// pages are now cached), then rewritten with the same length and
// extended through an O_WRONLY descriptor; a new open must read the new
// bytes, and stat must show the new size and a new mtime. What the
// descriptor opened before the write reads is logged, not checked: it
// keeps its pages until it is reopened (close-to-open consistency).
func checkDirectWriteReopen(root string) (note string, err error) {
	p := filepath.Join(root, "directio-reopen.bin")
	old := bytes.Repeat([]byte("old-"), 2048) // two pages
	if err := os.WriteFile(p, old, 0o644); err != nil {
		return "", err
	}
	reader, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer reader.Close()
	if got, err := readAllAt(reader, len(old)); err != nil || !bytes.Equal(got, old) {
		return "", fmt.Errorf("%s: first read: %d bytes equal=%v, %v", p, len(got), bytes.Equal(got, old), err)
	}
	before, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	time.Sleep(50 * time.Millisecond) // past a coarse host timestamp
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return "", err
	}
	want := append(bytes.Repeat([]byte("NEW!"), 2048), []byte("and a tail past the old end")...)
	if _, err := w.WriteAt(want, 0); err != nil {
		w.Close()
		return "", fmt.Errorf("%s: write through O_WRONLY: %w", p, err)
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if st.Size() != int64(len(want)) {
		return "", fmt.Errorf("%s: stat size %d after the direct write, want %d", p, st.Size(), len(want))
	}
	if !st.ModTime().After(before.ModTime()) {
		return "", fmt.Errorf("%s: mtime %v after the direct write, was %v", p, st.ModTime(), before.ModTime())
	}
	got, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	if !bytes.Equal(got, want) {
		return "", fmt.Errorf("%s: a new open read %d bytes starting %q, want %d starting %q (stale page cache)",
			p, len(got), head(got), len(want), head(want))
	}
	stale, err := readAllAt(reader, len(want))
	if err != nil {
		return "", err
	}
	reader.Close()
	return fmt.Sprintf("the descriptor opened before the write reads %q (old pages kept until reopen: %v)",
		head(stale), bytes.HasPrefix(stale, old[:16])), os.Remove(p)
}

// checkDirectWriteDD: busybox dd (O_WRONLY|O_CREAT|O_TRUNC) writes 4 MiB
// over a file whose old content the guest has cached; a new open reads
// back exactly what dd wrote.
func checkDirectWriteDD(root string) error {
	src := "/tmp/directio-src.bin"
	dst := filepath.Join(root, "directio-dd.bin")
	defer os.Remove(src)
	if out, err := exec.Command("/bin/busybox", "dd", "if=/dev/urandom", "of="+src, "bs=1048576", "count=4").CombinedOutput(); err != nil {
		return fmt.Errorf("dd of=%s: %w: %s", src, err, out)
	}
	if err := os.WriteFile(dst, bytes.Repeat([]byte{'x'}, 4<<20), 0o644); err != nil {
		return err
	}
	if _, err := os.ReadFile(dst); err != nil { // now in the guest's page cache
		return err
	}
	if out, err := exec.Command("/bin/busybox", "dd", "if="+src, "of="+dst, "bs=1048576").CombinedOutput(); err != nil {
		return fmt.Errorf("dd of=%s: %w: %s", dst, err, out)
	}
	want, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		return fmt.Errorf("%s: read back %d bytes, dd wrote %d; first difference at byte %d", dst, len(got), len(want), i)
	}
	return os.Remove(dst)
}

// readAllAt reads up to n bytes from offset 0 with pread.
func readAllAt(f *os.File, n int) ([]byte, error) {
	b := make([]byte, n)
	got := 0
	for got < n {
		m, err := unix.Pread(int(f.Fd()), b[got:], int64(got))
		if err != nil {
			return b[:got], err
		}
		if m == 0 {
			break
		}
		got += m
	}
	return b[:got], nil
}

func head(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}
