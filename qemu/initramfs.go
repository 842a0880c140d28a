package qemu

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
)

// Initramfs is an in-memory file tree written out as a gzipped cpio newc
// archive. Parent directories are created implicitly (mode 0755).
// Entries are owned by root.
type Initramfs struct {
	entries map[string]initramfsEntry
}

type initramfsEntry struct {
	hdr  cpioHeader
	data []byte
}

// NewInitramfs returns a tree holding the directories every guest needs and
// /dev/console, which the kernel opens for init before devtmpfs is
// mounted.
func NewInitramfs() *Initramfs {
	r := &Initramfs{entries: map[string]initramfsEntry{}}
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "mnt", "root", "lib/modules"} {
		r.Dir(d, 0o755)
	}
	r.Chmod("tmp", 0o1777)
	r.Device("dev/console", 0o020600, 5, 1)
	return r
}

func clean(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

func (r *Initramfs) add(name string, mode uint32, data []byte) {
	name = clean(name)
	if dir := path.Dir(name); dir != "." {
		if _, ok := r.entries[dir]; !ok {
			r.Dir(dir, 0o755)
		}
	}
	r.entries[name] = initramfsEntry{hdr: cpioHeader{Name: name, Mode: mode, Size: uint32(len(data))}, data: data}
}

// Dir adds a directory.
func (r *Initramfs) Dir(name string, perm uint32) { r.add(name, 0o040000|perm&0o7777, nil) }

// File adds a regular file.
func (r *Initramfs) File(name string, perm uint32, data []byte) {
	r.add(name, 0o100000|perm&0o7777, data)
}

// Symlink adds a symbolic link.
func (r *Initramfs) Symlink(name, target string) { r.add(name, 0o120000|0o777, []byte(target)) }

// Device adds a device node; mode includes S_IFCHR or S_IFBLK.
func (r *Initramfs) Device(name string, mode uint32, major, minor uint32) {
	r.add(name, mode, nil)
	e := r.entries[clean(name)]
	e.hdr.Rdev = major<<8 | minor
	r.entries[clean(name)] = e
}

// Chmod changes the permission bits of an existing entry.
func (r *Initramfs) Chmod(name string, perm uint32) {
	e, ok := r.entries[clean(name)]
	if ok {
		e.hdr.Mode = e.hdr.Mode&0o170000 | perm&0o7777
		r.entries[clean(name)] = e
	}
}

// CopyFile adds the host file src as name, keeping its permission bits.
func (r *Initramfs) CopyFile(name, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	r.File(name, uint32(fi.Mode().Perm()), data)
	return nil
}

// Modules adds kernel modules as /lib/modules/NAME.ko and their load order
// as /lib/modules/order, one name per line, for [InitScript].
func (r *Initramfs) Modules(mods []Module) {
	var order bytes.Buffer
	for _, m := range mods {
		r.File("lib/modules/"+m.Name+".ko", 0o644, m.Data)
		fmt.Fprintln(&order, m.Name)
	}
	r.File("lib/modules/order", 0o644, order.Bytes())
}

// Busybox adds the static busybox binary at /bin/busybox and a symlink for
// each applet it was built with, at the place it lists for it.
func (r *Initramfs) Busybox(binary string) error {
	if err := r.CopyFile("bin/busybox", binary); err != nil {
		return fmt.Errorf("busybox: %w", err)
	}
	out, err := exec.Command(binary, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("busybox --list-full: %w", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		applet = clean(applet)
		if _, taken := r.entries[applet]; !taken && applet != "bin/busybox" {
			r.Symlink(applet, "/bin/busybox")
		}
	}
	return nil
}

// WriteTo writes the tree as a gzipped cpio newc archive, parents before
// children.
func (r *Initramfs) WriteTo(w io.Writer) (int64, error) {
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	sort.Strings(names) // "a" sorts before "a/b"
	cw := &countWriter{w: w}
	zw, err := gzip.NewWriterLevel(cw, gzip.BestSpeed)
	if err != nil {
		return 0, err
	}
	c := &cpioWriter{w: zw}
	for _, n := range names {
		e := r.entries[n]
		if err := c.write(e.hdr, e.data); err != nil {
			return cw.n, err
		}
	}
	if err := c.close(); err != nil {
		return cw.n, err
	}
	err = zw.Close()
	return cw.n, err
}

// WriteFile writes the archive to a file.
func (r *Initramfs) WriteFile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := r.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write initramfs %s: %w", name, err)
	}
	return f.Close()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
