package difftest

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// opKind names an operation of the differential test.
type opKind int

const (
	opStat opKind = iota
	opRead
	opList
	opReadlink
	opListXattr
	opGetXattr
	opCreate
	opWrite
	opTruncate
	opUnlink
	opRmdir
	opMkdir
	opRename
	opSymlink
	opLink
	opChmod
	opSetXattr
	opRemoveXattr
	numOpKinds
)

var opNames = [numOpKinds]string{
	"stat", "read", "list", "readlink", "listxattr", "getxattr",
	"create", "write", "truncate", "unlink", "rmdir", "mkdir", "rename",
	"symlink", "link", "chmod", "setxattr", "removexattr",
}

func (k opKind) String() string { return opNames[k] }

// opWeights is how often each kind is generated, relative to the others.
var opWeights = [numOpKinds]int{
	opStat: 6, opRead: 4, opList: 6, opReadlink: 2, opListXattr: 2, opGetXattr: 2,
	opCreate: 8, opWrite: 8, opTruncate: 4, opUnlink: 7, opRmdir: 5, opMkdir: 6,
	opRename: 14, opSymlink: 3, opLink: 5, opChmod: 4, opSetXattr: 5, opRemoveXattr: 2,
}

// op is one operation with all its arguments. Sequences are generated
// before they run, so that a failing sequence can be replayed and shrunk.
type op struct {
	Kind  opKind
	Path  string
	Path2 string // rename and link: the new name
	Mode  uint32
	Off   int64  // write
	Size  int64  // truncate
	Data  []byte // write
	Name  string // xattr name; symlink target
	Value []byte // xattr value
	Flags int    // xattr flags
}

func (o op) String() string {
	switch o.Kind {
	case opCreate, opMkdir, opChmod:
		return fmt.Sprintf("%s(%q, %04o)", o.Kind, o.Path, o.Mode)
	case opWrite:
		return fmt.Sprintf("write(%q, off=%d, %s)", o.Path, o.Off, abbrev(o.Data))
	case opTruncate:
		return fmt.Sprintf("truncate(%q, %d)", o.Path, o.Size)
	case opRename, opLink:
		return fmt.Sprintf("%s(%q, %q)", o.Kind, o.Path, o.Path2)
	case opSymlink:
		return fmt.Sprintf("symlink(target=%q, %q)", o.Name, o.Path)
	case opGetXattr, opRemoveXattr:
		return fmt.Sprintf("%s(%q, %q)", o.Kind, o.Path, o.Name)
	case opSetXattr:
		return fmt.Sprintf("setxattr(%q, %q, %q, %s)", o.Path, o.Name, o.Value, xattrFlagsName(o.Flags))
	}
	return fmt.Sprintf("%s(%q)", o.Kind, o.Path)
}

func xattrFlagsName(f int) string {
	switch f {
	case unix.XATTR_CREATE:
		return "XATTR_CREATE"
	case unix.XATTR_REPLACE:
		return "XATTR_REPLACE"
	}
	return "0"
}

// abbrev renders data for a human: short data as it is, long data by its
// length and hash.
func abbrev(data []byte) string {
	if len(data) <= 48 {
		return fmt.Sprintf("%q", data)
	}
	return fmt.Sprintf("%d bytes %q... sha256:%x", len(data), data[:16], sha256.Sum256(data))
}

// appliesTo reports whether a client kernel would send the operation to
// its file server for an object of type typ (S_IFMT bits). The client's
// VFS refuses the others itself (read of a directory, truncate of a
// directory, readlink of a file, user.* xattrs on a symlink), or follows
// a symbolic link first (open, chmod): there a union's answer never
// reaches anyone, so it is not compared.
func (o op) appliesTo(typ uint32) bool {
	switch o.Kind {
	case opRead, opWrite, opTruncate:
		return typ == unix.S_IFREG
	case opList:
		return typ == unix.S_IFDIR
	case opReadlink:
		return typ == unix.S_IFLNK
	case opChmod:
		return typ != unix.S_IFLNK
	case opGetXattr, opSetXattr, opRemoveXattr:
		return typ == unix.S_IFREG || typ == unix.S_IFDIR
	}
	return true
}

// needsObject reports whether the operation acts on an existing object
// whose type decides whether it applies (see appliesTo).
func (o op) needsObject() bool {
	switch o.Kind {
	case opRead, opWrite, opTruncate, opList, opReadlink, opChmod, opGetXattr, opSetXattr, opRemoveXattr:
		return true
	}
	return false
}

// apply runs the operation on fs and renders its outcome, including what
// it read, so that two outcomes agree exactly when their strings do.
func (o op) apply(fs fsys) string {
	switch o.Kind {
	case opStat:
		fi, err := fs.Lstat(o.Path)
		return withOutput(err, fi.String)
	case opRead:
		data, err := fs.ReadFile(o.Path)
		return withOutput(err, func() string { return abbrev(data) })
	case opList:
		ents, err := fs.ReadDir(o.Path)
		return withOutput(err, func() string { return renderDirents(sortDirents(ents)) })
	case opReadlink:
		target, err := fs.Readlink(o.Path)
		return withOutput(err, func() string { return fmt.Sprintf("%q", target) })
	case opListXattr:
		names, err := fs.ListXattr(o.Path)
		return withOutput(err, func() string { return strings.Join(names, " ") })
	case opGetXattr:
		v, err := fs.GetXattr(o.Path, o.Name)
		return withOutput(err, func() string { return fmt.Sprintf("%q", v) })
	case opCreate:
		return renderErr(fs.Create(o.Path, o.Mode))
	case opWrite:
		return renderErr(fs.WriteAt(o.Path, o.Off, o.Data))
	case opTruncate:
		return renderErr(fs.Truncate(o.Path, o.Size))
	case opUnlink:
		return renderErr(fs.Unlink(o.Path))
	case opRmdir:
		return renderErr(fs.Rmdir(o.Path))
	case opMkdir:
		return renderErr(fs.Mkdir(o.Path, o.Mode))
	case opRename:
		return renderErr(fs.Rename(o.Path, o.Path2))
	case opSymlink:
		return renderErr(fs.Symlink(o.Name, o.Path))
	case opLink:
		return renderErr(fs.Link(o.Path, o.Path2))
	case opChmod:
		return renderErr(fs.Chmod(o.Path, o.Mode))
	case opSetXattr:
		return renderErr(fs.SetXattr(o.Path, o.Name, o.Value, o.Flags))
	case opRemoveXattr:
		return renderErr(fs.RemoveXattr(o.Path, o.Name))
	}
	panic(fmt.Sprintf("unknown op kind %d", o.Kind))
}

func withOutput(err error, out func() string) string {
	if err != nil {
		return renderErr(err)
	}
	return "ok: " + out()
}

func sortDirents(ents []dirEntry) []dirEntry {
	s := append([]dirEntry(nil), ents...)
	sort.Slice(s, func(i, j int) bool {
		if s[i].Name != s[j].Name {
			return s[i].Name < s[j].Name
		}
		return s[i].Type < s[j].Type
	})
	return s
}

// opGen generates operations on paths that exist or existed in the layers
// or were named by earlier operations, so that most operations meet
// objects and many meet each other.
type opGen struct {
	rng   *rand.Rand
	paths []string // known paths, in the order they became known
	known map[string]bool
	dirs  []string // paths that were directories at some point, "" first
}

// generateOps returns n operations for seed on the given layers.
func generateOps(seed int64, layers [2]layerSpec, n int) []op {
	return generateOpsFrom(rand.New(rand.NewPCG(uint64(seed), 0x0b5)), layers, n)
}

// generateOpsFrom returns n operations on the given layers, every choice
// taken from rng (a seeded generator, or the fuzzer's input).
func generateOpsFrom(rng *rand.Rand, layers [2]layerSpec, n int) []op {
	g := &opGen{rng: rng, known: map[string]bool{}, dirs: []string{""}}
	for _, l := range layers {
		for _, e := range l.Entries {
			g.learn(e.Path, e.Kind == kindDir)
		}
	}
	total := 0
	for _, w := range opWeights {
		total += w
	}
	ops := make([]op, 0, n)
	for range n {
		r := g.rng.IntN(total)
		k := opKind(0)
		for ; r >= opWeights[k]; k++ {
			r -= opWeights[k]
		}
		ops = append(ops, g.op(k))
	}
	return ops
}

func (g *opGen) learn(p string, isDir bool) {
	if p == "" || g.known[p] {
		return
	}
	g.known[p] = true
	g.paths = append(g.paths, p)
	if isDir {
		g.dirs = append(g.dirs, p)
	}
}

func (g *opGen) op(k opKind) op {
	o := op{Kind: k}
	switch k {
	case opStat, opRead, opReadlink, opListXattr, opUnlink, opRmdir:
		o.Path = g.existing()
	case opList:
		o.Path = g.existingOrRoot()
	case opGetXattr, opRemoveXattr:
		o.Path = g.existingOrRoot()
		o.Name = g.xattrName()
	case opCreate:
		o.Path = g.target()
		o.Mode = []uint32{0o644, 0o600, 0o755, 0o4755}[g.rng.IntN(4)]
		g.learn(o.Path, false)
	case opMkdir:
		o.Path = g.target()
		o.Mode = []uint32{0o755, 0o700, 0o1777}[g.rng.IntN(3)]
		g.learn(o.Path, true)
	case opSymlink:
		o.Path = g.target()
		o.Name = symlinkTargets[g.rng.IntN(len(symlinkTargets))]
		g.learn(o.Path, false)
	case opWrite:
		o.Path = g.existing()
		o.Data = g.data()
		switch r := g.rng.IntN(10); {
		case r < 5:
			o.Off = g.rng.Int64N(64)
		case r < 8:
			o.Off = g.rng.Int64N(16 << 10)
		default:
			o.Off = 100<<10 + g.rng.Int64N(100<<10) // leaves a hole
		}
	case opTruncate:
		o.Path = g.existing()
		o.Size = []int64{0, 1, 7, 100, 5000, 300 << 10}[g.rng.IntN(6)]
	case opChmod:
		o.Path = g.existingOrRoot()
		o.Mode = []uint32{0o644, 0o600, 0o755, 0o700, 0o4755, 0o1777, 0o000}[g.rng.IntN(7)]
	case opSetXattr:
		o.Path = g.existingOrRoot()
		o.Name = g.xattrName()
		o.Value = g.letters(1 + g.rng.IntN(8))
		o.Flags = []int{0, 0, unix.XATTR_CREATE, unix.XATTR_REPLACE}[g.rng.IntN(4)]
	case opRename:
		o.Path = g.existing()
		o.Path2 = g.renameTarget(o.Path)
		g.moved(o.Path, o.Path2)
	case opLink:
		o.Path = g.existing()
		o.Path2 = g.target()
		g.learn(o.Path2, false)
	}
	return o
}

func (g *opGen) existing() string { return g.paths[g.rng.IntN(len(g.paths))] }

func (g *opGen) existingOrRoot() string {
	if g.rng.IntN(12) == 0 {
		return ""
	}
	return g.existing()
}

// target returns a path for a new object: mostly a new name in a known
// directory, sometimes an existing path (EEXIST and the like).
func (g *opGen) target() string {
	if g.rng.IntN(10) < 3 {
		return g.existing()
	}
	return g.newName()
}

func (g *opGen) newName() string {
	dir := g.dirs[g.rng.IntN(len(g.dirs))]
	if g.rng.IntN(5) == 0 {
		dir = g.existing() // maybe not a directory: ENOTDIR
	}
	var name string
	if g.rng.IntN(2) == 0 {
		name = generatedNames[g.rng.IntN(len(generatedNames))]
	} else {
		name = fmt.Sprintf("n%d", g.rng.IntN(6))
	}
	return joinPath(dir, name)
}

// renameTarget picks where o.Path goes: over an existing object, to a new
// name elsewhere, next to itself, onto itself, into itself, or onto its
// own parent.
func (g *opGen) renameTarget(p string) string {
	switch r := g.rng.IntN(100); {
	case r < 35:
		return g.existing()
	case r < 75:
		return g.newName()
	case r < 85:
		dir, _ := splitLast(p)
		return joinPath(dir, fmt.Sprintf("r%d", g.rng.IntN(3)))
	case r < 90:
		return p
	case r < 95:
		return p + "/" + generatedNames[g.rng.IntN(len(generatedNames))]
	default:
		if dir, _ := splitLast(p); dir != "" {
			return dir
		}
		return g.existing()
	}
}

// moved learns the names a rename would give to p and everything below it.
func (g *opGen) moved(oldp, newp string) {
	if strings.HasPrefix(newp, oldp+"/") {
		return
	}
	wasDir := false
	for _, d := range g.dirs {
		if d == oldp {
			wasDir = true
		}
	}
	g.learn(newp, wasDir)
	for _, p := range append([]string(nil), g.paths...) {
		if rest, ok := strings.CutPrefix(p, oldp+"/"); ok {
			isDir := false
			for _, d := range g.dirs {
				if d == p {
					isDir = true
				}
			}
			g.learn(newp+"/"+rest, isDir)
		}
	}
}

func (g *opGen) xattrName() string {
	return []string{"user.color", "user.a", "user.b", "user.new"}[g.rng.IntN(4)]
}

func (g *opGen) data() []byte {
	n := 1 + g.rng.IntN(40)
	if g.rng.IntN(6) == 0 {
		n = 1000 + g.rng.IntN(9000)
	}
	return g.letters(n)
}

func (g *opGen) letters(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[g.rng.IntN(26)]
	}
	return b
}
