package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Over virtiofs, a guest kernel that offers FUSE_DIRECT_IO_ALLOW_MMAP
// (Linux 6.6+) gets every open answered direct-io, reads included
// (qemu/virtfs/directmmap.go); 6.1 keeps buffered reads. These checks
// run on the virtiofs mount only, whatever the guest's kernel.

// allowsDirectMmap reports whether the running kernel is 6.6 or later.
func allowsDirectMmap() (bool, string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false, "", err
	}
	rel := unix.ByteSliceToString(u.Release[:])
	f := strings.SplitN(rel, ".", 3)
	if len(f) < 2 {
		return false, rel, fmt.Errorf("kernel release %q", rel)
	}
	major, err1 := strconv.Atoi(f[0])
	minor, err2 := strconv.Atoi(strings.TrimFunc(f[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return false, rel, fmt.Errorf("kernel release %q", rel)
	}
	return major > 6 || major == 6 && minor >= 6, rel, nil
}

// checkDirectReadsByKernel: after a read(2) of a whole file, its pages
// are in the guest's page cache if reads are buffered and not if they
// are direct (mincore of a mapping tells). Reads must be direct on 6.6+
// and buffered before.
func checkDirectReadsByKernel(root string) (note string, err error) {
	want, rel, err := allowsDirectMmap()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "directmmap-residency.bin")
	data := bytes.Repeat([]byte("resident? "), 4*4096/10)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return "", err
	}
	defer os.Remove(p)
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if got, err := io.ReadAll(f); err != nil || !bytes.Equal(got, data) {
		return "", fmt.Errorf("%s: read %d bytes equal=%v, %v", p, len(got), bytes.Equal(got, data), err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, len(data), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return "", fmt.Errorf("%s: mmap MAP_SHARED of a read-only descriptor: %w", p, err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(data)+4095)/4096)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		return "", fmt.Errorf("%s: mincore: %w", p, e)
	}
	resident := 0
	for _, v := range vec {
		resident += int(v & 1)
	}
	direct := resident == 0
	if direct != want {
		return "", fmt.Errorf("%s: kernel %s: %d of %d pages cached after read(2) (direct reads %v), want direct reads %v",
			p, rel, resident, len(vec), direct, want)
	}
	return fmt.Sprintf("kernel %s: direct reads %v", rel, direct), nil
}

// checkWriteMmapCoherence: a MAP_SHARED mapping and write(2)/read(2) on
// other descriptors of the same file see each other's changes at once,
// and a new open sees both after the mapping is gone.
func checkWriteMmapCoherence(root string) error {
	p := filepath.Join(root, "directmmap-coherence.bin")
	size := 3 * 4096
	if err := os.WriteFile(p, bytes.Repeat([]byte{'.'}, size), 0o644); err != nil {
		return err
	}
	defer os.Remove(p)
	rw, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer rw.Close()
	m, err := unix.Mmap(int(rw.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("%s: mmap MAP_SHARED read-write: %w", p, err)
	}
	defer unix.Munmap(m)
	if m[0] != '.' || m[size-1] != '.' {
		return fmt.Errorf("%s: mapping reads %q...%q, want dots", p, m[:8], m[size-8:])
	}
	w, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer w.Close()
	viaWrite := []byte("written with pwrite(2)")
	if _, err := w.WriteAt(viaWrite, 4096+100); err != nil {
		return fmt.Errorf("%s: pwrite: %w", p, err)
	}
	if got := m[4096+100 : 4096+100+len(viaWrite)]; !bytes.Equal(got, viaWrite) {
		return fmt.Errorf("%s: the mapping reads %q after pwrite(2) of %q (stale mapping)", p, got, viaWrite)
	}
	viaMap := []byte("stored through the mapping")
	copy(m[2*4096+7:], viaMap)
	r, err := os.Open(p)
	if err != nil {
		return err
	}
	defer r.Close()
	got := make([]byte, len(viaMap))
	if _, err := r.ReadAt(got, 2*4096+7); err != nil || !bytes.Equal(got, viaMap) {
		return fmt.Errorf("%s: pread(2) reads %q after a store of %q through the mapping, %v", p, got, viaMap, err)
	}
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		return fmt.Errorf("%s: msync: %w", p, err)
	}
	all, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if !bytes.Equal(all[4096+100:4096+100+len(viaWrite)], viaWrite) || !bytes.Equal(all[2*4096+7:2*4096+7+len(viaMap)], viaMap) || len(all) != size {
		return fmt.Errorf("%s: a new open reads %d bytes without both changes", p, len(all))
	}
	return nil
}

// checkExecFromMount: a program copied onto the mount runs (exec reads
// its header with read and maps it MAP_PRIVATE), twice in a row.
func checkExecFromMount(root string) error {
	src, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return err
	}
	p := filepath.Join(root, "directmmap-busybox")
	if err := os.WriteFile(p, src, 0o755); err != nil {
		return err
	}
	defer os.Remove(p)
	for i := 0; i < 2; i++ {
		cmd := exec.Command(p, "echo", "ran from the mount")
		cmd.Args[0] = "busybox" // its applet comes from argv[0]
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != "ran from the mount\n" {
			return fmt.Errorf("%s: run %d: %q, %v", p, i+1, out, err)
		}
	}
	return nil
}
