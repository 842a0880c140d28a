package layertool

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/union9p/union9p/union"
	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// Layers names the layers of a union, as serve takes them.
type Layers struct {
	Lowers  []string // topmost first
	Upper   string
	Workdir string
	// UserXattr reads and writes overlay markers in the "user.overlay."
	// namespace (overlayfs's userxattr). The default is what union.Open
	// uses: "trusted.overlay." as root, "user.overlay." otherwise.
	UserXattr bool
}

// namespace is the marker namespace the layers use.
func (l Layers) namespace() whiteout.Namespace {
	if l.UserXattr || os.Geteuid() != 0 {
		return whiteout.User
	}
	return whiteout.Trusted
}

// otherNamespace is the namespace markers must not be in.
func otherNamespace(ns whiteout.Namespace) whiteout.Namespace {
	if ns == whiteout.Trusted {
		return whiteout.User
	}
	return whiteout.Trusted
}

// layer is one opened layer root.
type layer struct {
	fd    int // O_RDONLY directory descriptor of the root
	path  string
	lower bool // OCI markers are read in lower layers only
}

// stack is an opened set of layers.
type stack struct {
	ns     whiteout.Namespace
	upper  *layer // nil when the layers have none
	lowers []*layer
}

// openStack opens the layers for reading. needUpper says whether the tool
// works on an upper layer.
func openStack(l Layers, needUpper bool) (*stack, error) {
	if needUpper && l.Upper == "" {
		return nil, errors.New("no upper directory: give --upper (or -o upperdir=)")
	}
	s := &stack{ns: l.namespace()}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	if l.Upper != "" {
		fd, err := openRootDir(l.Upper)
		if err != nil {
			return nil, fmt.Errorf("upperdir %q: %w", l.Upper, err)
		}
		s.upper = &layer{fd: fd, path: l.Upper}
	}
	for _, p := range l.Lowers {
		if p == "" {
			return nil, errors.New("empty lowerdir (an empty element in lowerdir=A::B?)")
		}
		fd, err := openRootDir(p)
		if err != nil {
			return nil, fmt.Errorf("lowerdir %q: %w", p, err)
		}
		s.lowers = append(s.lowers, &layer{fd: fd, path: p, lower: true})
	}
	ok = true
	return s, nil
}

func (s *stack) close() {
	if s.upper != nil {
		unix.Close(s.upper.fd)
	}
	for _, l := range s.lowers {
		unix.Close(l.fd)
	}
}

// all returns the layers top-down: the upper (if any), then the lowers.
func (s *stack) all() []*layer {
	var out []*layer
	if s.upper != nil {
		out = append(out, s.upper)
	}
	return append(out, s.lowers...)
}

// openRootDir opens a layer root given by the user. The root itself may be
// reached through symbolic links (the user named it); nothing below it is.
func openRootDir(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	return fd, nil
}

// locks are layer locks held together.
type locks []*union.LayerLock

func (l locks) release() {
	for _, x := range l {
		x.Release()
	}
}

// lockForWriting takes the servers' lock on the upper and work directories
// (and on extra directories the tool writes) and refuses directories that
// a kernel overlay mount uses. The caller releases the locks.
func lockForWriting(l Layers, extra ...string) (locks, error) {
	dirs := append([]string{l.Upper, l.Workdir}, extra...)
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if mnt, err := overlayMountUsing(d); err != nil {
			return nil, err
		} else if mnt != "" {
			return nil, fmt.Errorf("%q is in use by a kernel overlay mount at %s; unmount it first", d, mnt)
		}
	}
	var held locks
	lock, err := union.LockLayers(l.Upper, l.Workdir)
	if err != nil {
		return nil, err
	}
	held = append(held, lock)
	for _, d := range extra {
		if d == "" {
			continue
		}
		more, err := union.LockLayers(d, "")
		if err != nil {
			held.release()
			return nil, err
		}
		held = append(held, more)
	}
	return held, nil
}

// overlayMountUsing returns the mount point of a kernel overlay mount whose
// upperdir, workdir or lowerdir is dir, or "".
func overlayMountUsing(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", nil // no mountinfo: nothing to compare with
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// ... mountpoint ... - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 || qf[0] != "overlay" {
			continue
		}
		for _, opt := range strings.Split(qf[2], ",") {
			key, val, _ := strings.Cut(opt, "=")
			if key != "upperdir" && key != "workdir" && key != "lowerdir" {
				continue
			}
			for _, p := range strings.Split(val, ":") {
				if unescapeMountinfo(p) == abs {
					return unescapeMountinfo(pf[4]), nil
				}
			}
		}
	}
	return "", nil
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
