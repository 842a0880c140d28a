package difftest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fixedTime is the mtime (and atime) of every object of a generated layer.
// An object that still shows it was not modified; copy-up must keep it.
var fixedTime = time.Date(2001, 2, 3, 4, 5, 6, 123456789, time.UTC)

// entryKind is the type of an entry of a generated layer.
type entryKind int

const (
	kindFile     entryKind = iota
	kindDir                // Opaque marks it trusted.overlay.opaque=y
	kindSymlink            // Target is the link's content
	kindHardlink           // another name of the file at Target, same layer
	kindWhiteout           // overlayfs whiteout: character device 0/0
	kindFifo
)

func (k entryKind) String() string {
	return [...]string{"file", "dir", "symlink", "hardlink", "whiteout", "fifo"}[k]
}

// layerEntry is one object of a generated layer.
type layerEntry struct {
	Path     string // slash-separated, relative to the layer root
	Kind     entryKind
	Mode     uint32 // permission bits (07777)
	UID, GID int
	Data     []byte // file content after Hole bytes of hole
	Hole     int64
	Target   string
	Opaque   bool
	Xattrs   map[string]string
}

func (e layerEntry) String() string {
	s := fmt.Sprintf("%s %s %04o %d:%d", e.Path, e.Kind, e.Mode, e.UID, e.GID)
	switch e.Kind {
	case kindFile:
		s += fmt.Sprintf(" size=%d", e.Hole+int64(len(e.Data)))
	case kindSymlink, kindHardlink:
		s += " -> " + e.Target
	}
	if e.Opaque {
		s += " opaque"
	}
	names := make([]string, 0, len(e.Xattrs))
	for name := range e.Xattrs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s += fmt.Sprintf(" %s=%q", name, e.Xattrs[name])
	}
	return s
}

// layerSpec is a generated layer; parents come before their children.
type layerSpec struct {
	Entries []layerEntry
}

func (l layerSpec) byPath() map[string]layerEntry {
	m := make(map[string]layerEntry, len(l.Entries))
	for _, e := range l.Entries {
		m[e.Path] = e
	}
	return m
}

// generatedNames are the names layers and operations draw from. They are
// few so that layers share names and operations meet existing objects.
var generatedNames = []string{"a", "b", "c", "d", "e", "f", "g"}

var symlinkTargets = []string{"a", "b/c", "../a", "../../../etc", "/etc/passwd", "nonexistent", ".", "..", "/"}

// generateLayers returns two lower layers for seed, topmost first. The
// bottom one is a random tree; the top one shares many of its names:
// merged directories, files shadowing files, directories over files and
// the reverse, whiteouts, and opaque directories.
func generateLayers(seed int64) [2]layerSpec {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x1a7e))
	bottom := &layerGen{rng: rng}
	bottom.dir("", 0)
	top := &layerGen{rng: rng, below: layerSpec{bottom.out}.byPath()}
	top.dir("", 0)
	return [2]layerSpec{{top.out}, {bottom.out}}
}

type layerGen struct {
	rng   *rand.Rand
	below map[string]layerEntry // the layer underneath; nil for the bottom one
	out   []layerEntry
	files []string // regular files so far: sources for hard links
}

const maxDepth = 3

func (g *layerGen) dir(dir string, depth int) {
	names := map[string]bool{}
	for _, name := range g.namesBelow(dir) {
		if g.rng.IntN(10) < 8 {
			names[name] = true
		}
	}
	n := 1 + g.rng.IntN(3)
	if depth == 0 {
		n = 4 + g.rng.IntN(3)
	}
	for range n {
		names[generatedNames[g.rng.IntN(len(generatedNames))]] = true
	}
	sorted := make([]string, 0, len(names))
	for name := range names {
		sorted = append(sorted, name)
	}
	sort.Strings(sorted)
	for _, name := range sorted {
		p := joinPath(dir, name)
		if b, ok := g.below[p]; ok {
			g.shadow(p, b, depth)
		} else {
			g.fresh(p, depth)
		}
	}
}

// namesBelow returns the names that the layer below has in dir, sorted
// (the generator must not depend on map order).
func (g *layerGen) namesBelow(dir string) []string {
	var names []string
	for p := range g.below {
		if d, name := splitLast(p); d == dir {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// shadow adds, in the top layer, an entry whose name the layer below has.
func (g *layerGen) shadow(p string, below layerEntry, depth int) {
	r := g.rng.IntN(100)
	if below.Kind == kindDir {
		switch {
		case r < 45:
			g.mkdir(p, depth, false)
		case r < 60:
			g.mkdir(p, depth, true)
		case r < 80:
			g.add(layerEntry{Path: p, Kind: kindWhiteout})
		case r < 90:
			g.file(p)
		default:
			g.symlink(p)
		}
		return
	}
	switch {
	case r < 30:
		g.add(layerEntry{Path: p, Kind: kindWhiteout})
	case r < 60:
		g.file(p)
	case r < 80 && depth < maxDepth:
		g.mkdir(p, depth, false)
	default:
		g.symlink(p)
	}
}

// fresh adds an entry whose name the layer below does not have.
func (g *layerGen) fresh(p string, depth int) {
	r := g.rng.IntN(100)
	switch {
	case r < 45:
		g.file(p)
	case r < 70 && depth < maxDepth:
		g.mkdir(p, depth, g.below != nil && g.rng.IntN(8) == 0)
	case r < 82:
		g.symlink(p)
	case r < 92 && len(g.files) > 0:
		g.add(layerEntry{Path: p, Kind: kindHardlink, Target: g.files[g.rng.IntN(len(g.files))]})
	case r < 95:
		g.add(layerEntry{Path: p, Kind: kindFifo, Mode: 0o644})
	case r < 97:
		// A whiteout that hides nothing: it must stay invisible.
		g.add(layerEntry{Path: p, Kind: kindWhiteout})
	default:
		g.file(p)
	}
}

func (g *layerGen) mkdir(p string, depth int, opaque bool) {
	modes := []uint32{0o755, 0o755, 0o700, 0o775, 0o1777, 0o555}
	e := layerEntry{Path: p, Kind: kindDir, Mode: modes[g.rng.IntN(len(modes))], Opaque: opaque}
	g.owner(&e)
	g.xattrs(&e)
	g.add(e)
	g.dir(p, depth+1)
}

func (g *layerGen) file(p string) {
	modes := []uint32{0o644, 0o644, 0o600, 0o755, 0o444, 0o4755, 0o2750}
	e := layerEntry{Path: p, Kind: kindFile, Mode: modes[g.rng.IntN(len(modes))]}
	switch r := g.rng.IntN(100); {
	case r < 15:
	case r < 75:
		e.Data = g.text(1 + g.rng.IntN(200))
	case r < 90:
		e.Data = g.text(4000 + g.rng.IntN(9000))
	default:
		e.Hole = 64<<10 + g.rng.Int64N(128<<10)
		e.Data = g.text(1 + g.rng.IntN(100))
	}
	g.owner(&e)
	g.xattrs(&e)
	g.add(e)
	g.files = append(g.files, p)
}

func (g *layerGen) symlink(p string) {
	g.add(layerEntry{Path: p, Kind: kindSymlink, Mode: 0o777, Target: symlinkTargets[g.rng.IntN(len(symlinkTargets))]})
}

func (g *layerGen) owner(e *layerEntry) {
	if g.rng.IntN(7) == 0 {
		e.UID, e.GID = 1000, 100+g.rng.IntN(2)*900
	}
}

func (g *layerGen) xattrs(e *layerEntry) {
	if g.rng.IntN(3) != 0 {
		return
	}
	e.Xattrs = map[string]string{"user.color": string(g.text(1 + g.rng.IntN(12)))}
	if g.rng.IntN(3) == 0 {
		e.Xattrs["user.a"] = "lower"
	}
	if g.rng.IntN(4) == 0 {
		e.Xattrs["trusted.note"] = "kept by copy-up"
	}
}

func (g *layerGen) text(n int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 \n"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.rng.IntN(len(alphabet))]
	}
	return b
}

func (g *layerGen) add(e layerEntry) { g.out = append(g.out, e) }

// materialize creates the layer in dir, which must exist and be empty, and
// sets every object's times (dir included) to fixedTime.
func materialize(t *testing.T, l layerSpec, dir string) {
	t.Helper()
	for _, e := range l.Entries {
		if err := createEntry(dir, e); err != nil {
			t.Fatalf("materialize %s in %s: %v", e, dir, err)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(fixedTime.UnixNano()), unix.NsecToTimespec(fixedTime.UnixNano())}
	for _, e := range slices.Backward(l.Entries) {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dir, e.Path), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatalf("materialize: set times of %s: %v", e.Path, err)
		}
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dir, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatalf("materialize: set times of %s: %v", dir, err)
	}
}

func createEntry(root string, e layerEntry) error {
	p := filepath.Join(root, e.Path)
	switch e.Kind {
	case kindFile:
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		if e.Hole > 0 {
			if err := f.Truncate(e.Hole); err != nil {
				f.Close()
				return err
			}
		}
		if _, err := f.WriteAt(e.Data, e.Hole); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	case kindDir:
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
		if e.Opaque {
			if err := unix.Lsetxattr(p, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
				return err
			}
		}
	case kindSymlink:
		return os.Symlink(e.Target, p)
	case kindHardlink:
		return os.Link(filepath.Join(root, e.Target), p)
	case kindWhiteout:
		return unix.Mknod(p, unix.S_IFCHR, 0)
	case kindFifo:
		if err := unix.Mkfifo(p, 0o600); err != nil {
			return err
		}
	}
	for name, v := range e.Xattrs {
		if err := unix.Lsetxattr(p, name, []byte(v), 0); err != nil {
			return fmt.Errorf("setxattr %s: %w", name, err)
		}
	}
	if err := os.Lchown(p, e.UID, e.GID); err != nil {
		return err
	}
	// After chown, which clears setuid and setgid.
	return unix.Fchmodat(unix.AT_FDCWD, p, e.Mode, 0)
}

// joinPath joins a relative directory path ("" is the root) and a name.
func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
