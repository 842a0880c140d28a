package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/union9p/union9p/test/p9wire"
	"golang.org/x/sys/unix"
)

// maxFiles bounds each connection's directory.
const maxFiles = 24

// conn is one client connection's workload; every answer is checked.
type conn struct {
	c      *p9wire.Client
	id     int
	rnd    *rand.Rand
	next   uint32
	seq    int
	files  []string
	data   map[string][]byte
	ops    *atomic.Int64
	report func(string, error)
}

func (w *conn) fid() uint32 { w.next++; return w.next }

func (w *conn) run(stop <-chan struct{}) {
	w.data = map[string][]byte{}
	if _, err := w.c.Attach(0, "root", "", 0); err != nil {
		w.report("attach", err)
		return
	}
	dir := fmt.Sprintf("c%d", w.id)
	f := w.fid()
	if _, err := w.c.Walk(0, f); err != nil {
		w.report("walk", err)
		return
	}
	if _, err := w.c.Mkdir(f, dir, 0o755, 0); err != nil {
		w.report("mkdir", err)
		return
	}
	w.c.Clunk(f)
	ops := []func(string) error{w.create, w.create, w.readBack, w.rename, w.unlink, w.subdir,
		w.lowerStat, w.lowerReaddir, w.lowerWrite, w.xattr}
	for {
		select {
		case <-stop:
			return
		default:
		}
		if err := ops[w.rnd.IntN(len(ops))](dir); err != nil {
			w.report(fmt.Sprintf("conn %d", w.id), err)
			if _, ok := err.(unix.Errno); !ok {
				return // the connection is gone
			}
		}
		w.ops.Add(1)
	}
}

// walk clones the root to a new fid at names; the caller clunks it.
func (w *conn) walk(names ...string) (uint32, error) {
	f := w.fid()
	if _, err := w.c.Walk(0, f, names...); err != nil {
		return 0, fmt.Errorf("walk %v: %w", names, err)
	}
	return f, nil
}

func (w *conn) create(dir string) error {
	if len(w.files) >= maxFiles {
		return w.unlink(dir)
	}
	f, err := w.walk(dir)
	if err != nil {
		return err
	}
	defer w.c.Clunk(f)
	w.seq++
	name := fmt.Sprintf("f%d", w.seq)
	if _, _, err := w.c.Lcreate(f, name, unix.O_RDWR, 0o644, 0); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	data := make([]byte, 1+w.rnd.IntN(64<<10))
	for i := range data {
		data[i] = byte(w.rnd.Uint32())
	}
	for off := 0; off < len(data); off += 32 << 10 {
		end := min(off+32<<10, len(data))
		if _, err := w.c.Write(f, uint64(off), data[off:end]); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	w.files = append(w.files, name)
	w.data[name] = data
	return nil
}

func (w *conn) readBack(dir string) error {
	if len(w.files) == 0 {
		return nil
	}
	name := w.files[w.rnd.IntN(len(w.files))]
	f, err := w.walk(dir, name)
	if err != nil {
		return err
	}
	defer w.c.Clunk(f)
	if _, _, err := w.c.Lopen(f, unix.O_RDONLY); err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	var got []byte
	for {
		p, err := w.c.Read(f, uint64(len(got)), 64<<10)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		if len(p) == 0 {
			break
		}
		got = append(got, p...)
	}
	if !bytes.Equal(got, w.data[name]) {
		return fmt.Errorf("%s/%s: read %d bytes differing from the %d written", dir, name, len(got), len(w.data[name]))
	}
	return nil
}

func (w *conn) rename(dir string) error {
	if len(w.files) == 0 {
		return nil
	}
	i := w.rnd.IntN(len(w.files))
	d, err := w.walk(dir)
	if err != nil {
		return err
	}
	defer w.c.Clunk(d)
	w.seq++
	to := fmt.Sprintf("r%d", w.seq)
	if err := w.c.Renameat(d, w.files[i], d, to); err != nil {
		return fmt.Errorf("rename %s: %w", w.files[i], err)
	}
	w.data[to] = w.data[w.files[i]]
	delete(w.data, w.files[i])
	w.files[i] = to
	return nil
}

func (w *conn) unlink(dir string) error {
	if len(w.files) == 0 {
		return nil
	}
	i := w.rnd.IntN(len(w.files))
	d, err := w.walk(dir)
	if err != nil {
		return err
	}
	defer w.c.Clunk(d)
	if err := w.c.Unlinkat(d, w.files[i], 0); err != nil {
		return fmt.Errorf("unlink %s: %w", w.files[i], err)
	}
	delete(w.data, w.files[i])
	w.files = append(w.files[:i], w.files[i+1:]...)
	return nil
}

func (w *conn) subdir(dir string) error {
	d, err := w.walk(dir)
	if err != nil {
		return err
	}
	defer w.c.Clunk(d)
	if _, err := w.c.Mkdir(d, "sub", 0o755, 0); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	if err := w.c.Renameat(d, "sub", d, "sub2"); err != nil {
		return fmt.Errorf("rename dir: %w", err)
	}
	if err := w.c.Unlinkat(d, "sub2", p9wire.AtRemovedir); err != nil {
		return fmt.Errorf("rmdir: %w", err)
	}
	return nil
}

func (w *conn) lowerStat(string) error {
	f, err := w.walk("shared", fmt.Sprintf("f%d", w.rnd.IntN(lowerFiles)))
	if err != nil {
		return err
	}
	defer w.c.Clunk(f)
	_, err = w.c.Getattr(f, p9wire.GetattrBasic)
	return err
}

// lowerReaddir lists the shared directory in small chunks, as the kernel
// does, and checks it saw every lower file.
func (w *conn) lowerReaddir(string) error {
	f, err := w.walk("shared")
	if err != nil {
		return err
	}
	defer w.c.Clunk(f)
	if _, _, err := w.c.Lopen(f, unix.O_RDONLY|unix.O_DIRECTORY); err != nil {
		return fmt.Errorf("opendir: %w", err)
	}
	n, off := 0, uint64(0)
	for {
		ents, err := w.c.Readdir(f, off, 4096)
		if err != nil {
			return fmt.Errorf("readdir: %w", err)
		}
		if len(ents) == 0 {
			break
		}
		for _, e := range ents {
			if e.Name != "." && e.Name != ".." {
				n++
			}
			off = e.Offset
		}
	}
	if n != lowerFiles {
		return fmt.Errorf("readdir shared: %d entries, want %d", n, lowerFiles)
	}
	return nil
}

// lowerWrite writes into a shared lower file (its first write copies it
// up; others race with it) and keeps its size.
func (w *conn) lowerWrite(string) error {
	f, err := w.walk("shared", fmt.Sprintf("f%d", w.rnd.IntN(lowerFiles)))
	if err != nil {
		return err
	}
	defer w.c.Clunk(f)
	if _, _, err := w.c.Lopen(f, unix.O_RDWR); err != nil {
		return fmt.Errorf("open lower for write: %w", err)
	}
	_, err = w.c.Write(f, 0, []byte(fmt.Sprintf("conn %d", w.id)))
	return err
}

func (w *conn) xattr(dir string) error {
	if len(w.files) == 0 {
		return nil
	}
	name := w.files[w.rnd.IntN(len(w.files))]
	f, err := w.walk(dir, name)
	if err != nil {
		return err
	}
	defer w.c.Clunk(f)
	val := []byte(fmt.Sprintf("v%d", w.rnd.IntN(1000)))
	if err := w.c.SetXattr(f, w.fid(), "user.load", val, 0); err != nil {
		return fmt.Errorf("setxattr: %w", err)
	}
	got, err := w.c.GetXattr(f, w.fid(), "user.load")
	if err != nil {
		return fmt.Errorf("getxattr: %w", err)
	}
	if !bytes.Equal(got, val) {
		return fmt.Errorf("getxattr %s: %q, set %q", name, got, val)
	}
	return nil
}
