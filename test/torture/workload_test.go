package torture

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/union9p/union9p/test/p9wire"
	"golang.org/x/sys/unix"
)

// worker is one client connection running random operations until its
// connection dies (the server was killed). Each worker of a round has its
// own directory, so its model of what it made is exact up to the operation
// in flight when the server died; names are never reused across rounds.
type worker struct {
	c    *p9wire.Client
	rnd  *rand.Rand
	l    *layers
	dir  string // "rRwW", in the union's root
	next uint32 // next fid
	seq  int

	files  []string // unsealed files in dir
	subdir []string // empty subdirectories of dir

	mu     *sync.Mutex
	sealed map[string]string // path -> sha256: fsync answered, never touched again
	// unexpected collects errors that no crash explains.
	unexpected *[]string
	ops        int
}

// errServerGone: the connection ended (the server was killed).
var errServerGone = errors.New("server gone")

// errTooMany stops a worker whose operations keep failing.
var errTooMany = errors.New("too many unexpected errors")

// classify turns an error into errServerGone when the connection ended,
// keeps errno answers, and reports tolerable errnos as nil.
func (w *worker) check(op string, err error, tolerated ...unix.Errno) error {
	if err == nil {
		return nil
	}
	// An answer of the server is a bare unix.Errno; anything else (a
	// wrapped ECONNRESET included) means the connection ended.
	errno, ok := err.(unix.Errno)
	if !ok {
		return errServerGone
	}
	for _, e := range tolerated {
		if errno == e {
			return nil
		}
	}
	w.mu.Lock()
	*w.unexpected = append(*w.unexpected, fmt.Sprintf("%s: %v", op, err))
	n := len(*w.unexpected)
	w.mu.Unlock()
	if n > 50 {
		return errTooMany
	}
	return nil
}

func (w *worker) fid() uint32 { w.next++; return w.next }

// walk clones the root fid to a new fid at names.
func (w *worker) walk(names ...string) (uint32, error) {
	f := w.fid()
	_, err := w.c.Walk(0, f, names...)
	return f, err
}

func (w *worker) name(prefix string) string {
	w.seq++
	return fmt.Sprintf("%s%d", prefix, w.seq)
}

func (w *worker) payload(max int) []byte {
	b := make([]byte, w.rnd.IntN(max+1))
	for i := range b {
		b[i] = byte(w.rnd.Uint32())
	}
	return b
}

// run performs operations until the connection dies.
func (w *worker) run() {
	if _, err := w.c.Attach(0, "root", "", 0); err != nil {
		return
	}
	f, err := w.walk()
	if err != nil {
		return
	}
	if _, err := w.c.Mkdir(f, w.dir, 0o755, 0); w.check("mkdir "+w.dir, err) != nil {
		return
	}
	w.c.Clunk(f)
	ops := []func() error{
		w.createFile, w.createFile, w.createFile, w.renameFile, w.unlinkFile,
		w.mkdirRenameRmdir, w.bigCopyUp, w.smallWrite, w.treeCreate,
		w.lowerUnlink, w.lowerRename, w.xattrOwn,
	}
	for {
		if err := ops[w.rnd.IntN(len(ops))](); err != nil {
			return
		}
		w.ops++
	}
}

// createFile creates a file in the worker's directory, writes it and, half
// the time, fsyncs it: an answered fsync seals it.
func (w *worker) createFile() error {
	f, err := w.walk(w.dir)
	if err := w.check("walk "+w.dir, err); err != nil {
		return err
	}
	defer w.c.Clunk(f)
	name := w.name("f")
	if _, _, err := w.c.Lcreate(f, name, unix.O_RDWR, 0o644, 0); err != nil {
		return w.check("create "+name, err)
	}
	data := w.payload(96 << 10)
	for off := 0; off < len(data); off += 32 << 10 {
		end := min(off+32<<10, len(data))
		if _, err := w.c.Write(f, uint64(off), data[off:end]); err != nil {
			return w.check("write "+name, err)
		}
	}
	if w.rnd.IntN(2) == 0 {
		if err := w.c.Fsync(f, false); err != nil {
			return w.check("fsync "+name, err)
		}
		h := sha256.Sum256(data)
		w.mu.Lock()
		w.sealed[w.dir+"/"+name] = hex.EncodeToString(h[:])
		w.mu.Unlock()
		return nil
	}
	w.files = append(w.files, name)
	return nil
}

func (w *worker) pickFile() (int, bool) {
	if len(w.files) == 0 {
		return 0, false
	}
	return w.rnd.IntN(len(w.files)), true
}

func (w *worker) renameFile() error {
	i, ok := w.pickFile()
	if !ok {
		return nil
	}
	d, err := w.walk(w.dir)
	if err := w.check("walk", err); err != nil {
		return err
	}
	defer w.c.Clunk(d)
	to := w.name("r")
	if err := w.c.Renameat(d, w.files[i], d, to); err != nil {
		return w.check("rename "+w.files[i], err)
	}
	w.files[i] = to
	return nil
}

func (w *worker) unlinkFile() error {
	i, ok := w.pickFile()
	if !ok {
		return nil
	}
	d, err := w.walk(w.dir)
	if err := w.check("walk", err); err != nil {
		return err
	}
	defer w.c.Clunk(d)
	if err := w.c.Unlinkat(d, w.files[i], 0); err != nil {
		return w.check("unlink "+w.files[i], err)
	}
	w.files = append(w.files[:i], w.files[i+1:]...)
	return nil
}

// mkdirRenameRmdir makes a directory with a file, renames it, and removes
// one of the empty ones made earlier.
func (w *worker) mkdirRenameRmdir() error {
	d, err := w.walk(w.dir)
	if err := w.check("walk", err); err != nil {
		return err
	}
	defer w.c.Clunk(d)
	name := w.name("d")
	if _, err := w.c.Mkdir(d, name, 0o755, 0); err != nil {
		return w.check("mkdir "+name, err)
	}
	to := w.name("e")
	if err := w.c.Renameat(d, name, d, to); err != nil {
		return w.check("rename dir "+name, err)
	}
	w.subdir = append(w.subdir, to)
	if len(w.subdir) > 3 {
		victim := w.subdir[0]
		if err := w.c.Unlinkat(d, victim, p9wire.AtRemovedir); err != nil {
			return w.check("rmdir "+victim, err)
		}
		w.subdir = w.subdir[1:]
	}
	return nil
}

// bigCopyUp changes only the metadata of a big lower file: the copy-up
// must bring all of its data.
func (w *worker) bigCopyUp() error {
	name := fmt.Sprintf("b%d", w.rnd.IntN(bigFiles))
	f, err := w.walk("big", name)
	if err := w.check("walk big/"+name, err); err != nil {
		return err
	}
	defer w.c.Clunk(f)
	if w.rnd.IntN(2) == 0 {
		return w.check("chmod big/"+name, w.c.Setattr(f, p9wire.SetAttr{Valid: p9wire.SetattrMode, Mode: 0o600 | uint32(w.rnd.IntN(2))*0o040}))
	}
	return w.check("setxattr big/"+name, w.c.SetXattr(f, w.fid(), "user.touched", []byte(w.dir), 0))
}

// smallWrite overwrites the start of a small lower file (a copy-up with
// data, then a write that keeps the size).
func (w *worker) smallWrite() error {
	n := w.rnd.IntN(smallFiles)
	if n == 1 {
		return nil // whited out in the top lower
	}
	name := fmt.Sprintf("s%d", n)
	f, err := w.walk("small", name)
	if err != nil {
		return w.check("walk small/"+name, err, unix.ENOENT)
	}
	defer w.c.Clunk(f)
	if _, _, err := w.c.Lopen(f, unix.O_RDWR); err != nil {
		return w.check("open small/"+name, err, unix.ENOENT)
	}
	data := []byte(w.dir)
	if int64(len(data)) > w.l.smallSize["small/"+name] {
		data = data[:w.l.smallSize["small/"+name]]
	}
	_, err = w.c.Write(f, 0, data)
	return w.check("write small/"+name, err)
}

// treeCreate creates a file deep in a lower tree: its directories are
// copied up first.
func (w *worker) treeCreate() error {
	d, err := w.walk("tree", fmt.Sprintf("d%d", w.rnd.IntN(treeDirs)), "sub", "leaf")
	if err := w.check("walk tree", err); err != nil {
		return err
	}
	defer w.c.Clunk(d)
	name := w.name(w.dir + "-")
	if _, _, err := w.c.Lcreate(d, name, unix.O_WRONLY, 0o600, 0); err != nil {
		return w.check("create in tree", err)
	}
	_, err = w.c.Write(d, 0, []byte(name))
	return w.check("write in tree", err)
}

// lowerUnlink deletes a lower file in the tree (a whiteout); another worker
// or an earlier round may have deleted it already.
func (w *worker) lowerUnlink() error {
	d, err := w.walk("tree", fmt.Sprintf("d%d", w.rnd.IntN(treeDirs)), "sub", "leaf")
	if err := w.check("walk tree", err); err != nil {
		return err
	}
	defer w.c.Clunk(d)
	return w.check("unlink lower", w.c.Unlinkat(d, fmt.Sprintf("f%d", w.rnd.IntN(4)), 0), unix.ENOENT)
}

// lowerRename renames a small lower file within its directory (copy-up,
// rename, whiteout of the old name).
func (w *worker) lowerRename() error {
	n := w.rnd.IntN(smallFiles)
	if n == 1 {
		return nil
	}
	d, err := w.walk("small")
	if err := w.check("walk small", err); err != nil {
		return err
	}
	defer w.c.Clunk(d)
	to := fmt.Sprintf("mv-s%d-%s", n, w.name(w.dir+"-"))
	return w.check("rename lower", w.c.Renameat(d, fmt.Sprintf("s%d", n), d, to), unix.ENOENT)
}

func (w *worker) xattrOwn() error {
	i, ok := w.pickFile()
	if !ok {
		return nil
	}
	f, err := w.walk(w.dir, w.files[i])
	if err := w.check("walk", err); err != nil {
		return err
	}
	defer w.c.Clunk(f)
	return w.check("setxattr", w.c.SetXattr(f, w.fid(), "user.own", w.payload(64), 0))
}
