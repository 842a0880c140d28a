package union

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// layout builds a host directory from a list of entries: "dir/", "file=content",
// "link->target", "whiteout!" (a 0/0 char device), "dir/+opaque".
func layout(t *testing.T, dir string, entries ...string) {
	t.Helper()
	for _, e := range entries {
		switch {
		case strings.HasSuffix(e, "/+opaque"):
			p := filepath.Join(dir, strings.TrimSuffix(e, "/+opaque"))
			must(t, os.MkdirAll(p, 0o755))
			must(t, unix.Setxattr(p, "trusted.overlay.opaque", []byte("y"), 0))
		case strings.HasSuffix(e, "/"):
			must(t, os.MkdirAll(filepath.Join(dir, e), 0o755))
		case strings.HasSuffix(e, "!"):
			p := filepath.Join(dir, strings.TrimSuffix(e, "!"))
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, unix.Mknod(p, unix.S_IFCHR, 0))
		case strings.Contains(e, "->"):
			kv := strings.SplitN(e, "->", 2)
			p := filepath.Join(dir, kv[0])
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.Symlink(kv[1], p))
		default:
			kv := strings.SplitN(e, "=", 2)
			p := filepath.Join(dir, kv[0])
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			content := ""
			if len(kv) == 2 {
				content = kv[1]
			}
			must(t, os.WriteFile(p, []byte(content), 0o644))
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type testUnion struct {
	*Union
	upper, work string
	lowers      []string
	before      string // snapshot of the lowers, compared at cleanup
}

// setupDone re-takes the lower layers' snapshot after a test prepared them
// further by hand.
func (tu *testUnion) setupDone(t *testing.T) { tu.before = snapshot(t, tu.lowers) }

// newUnion makes a union of the given lower layouts (topmost first) and an
// upper layout.
func newUnion(t *testing.T, upper []string, lowers ...[]string) *testUnion {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for trusted.overlay xattrs and device whiteouts")
	}
	base := t.TempDir()
	tu := &testUnion{upper: filepath.Join(base, "upper"), work: filepath.Join(base, "work")}
	must(t, os.Mkdir(tu.upper, 0o755))
	must(t, os.Mkdir(tu.work, 0o755))
	layout(t, tu.upper, upper...)
	for i, l := range lowers {
		d := filepath.Join(base, "lower"+string(rune('0'+i)))
		must(t, os.Mkdir(d, 0o755))
		layout(t, d, l...)
		tu.lowers = append(tu.lowers, d)
	}
	tu.before = snapshot(t, tu.lowers)
	u, err := Open(Options{Lowers: tu.lowers, Upper: tu.upper, Workdir: tu.work})
	must(t, err)
	t.Cleanup(func() {
		u.Close()
		if after := snapshot(t, tu.lowers); after != tu.before {
			t.Errorf("a lower layer changed:\nbefore:\n%s\nafter:\n%s", tu.before, after)
		}
	})
	tu.Union = u
	return tu
}

// walk looks a slash-separated path up from the root.
func (tu *testUnion) walk(t *testing.T, path string) (*Node, error) {
	t.Helper()
	n, err := tu.Root()
	must(t, err)
	for _, c := range strings.Split(strings.Trim(path, "/"), "/") {
		if c == "" {
			continue
		}
		next, err := n.Lookup(c)
		n.Release()
		if err != nil {
			return nil, err
		}
		n = next
	}
	return n, nil
}

func (tu *testUnion) mustWalk(t *testing.T, path string) *Node {
	t.Helper()
	n, err := tu.walk(t, path)
	if err != nil {
		t.Fatalf("walk %s: %v", path, err)
	}
	t.Cleanup(n.Release)
	return n
}

// list returns the merged names of a directory without . and ..
func (tu *testUnion) list(t *testing.T, path string) []string {
	t.Helper()
	n := tu.mustWalk(t, path)
	f, err := n.Open(unix.O_RDONLY)
	must(t, err)
	defer f.Close()
	var names []string
	cookie := uint64(0)
	for {
		ents, err := f.ReadDir(cookie, 3)
		must(t, err)
		if len(ents) == 0 {
			break
		}
		for _, e := range ents {
			if e.Name != "." && e.Name != ".." {
				names = append(names, e.Name)
			}
			cookie = e.Cookie
		}
	}
	slices.Sort(names)
	return names
}

func (tu *testUnion) read(t *testing.T, path string) string {
	t.Helper()
	n := tu.mustWalk(t, path)
	f, err := n.Open(unix.O_RDONLY)
	must(t, err)
	defer f.Close()
	buf := make([]byte, 1<<16)
	k, err := f.ReadAt(buf, 0)
	if err != nil && k == 0 && err.Error() != "EOF" {
		t.Fatal(err)
	}
	return string(buf[:k])
}

func wantErrno(t *testing.T, err error, want unix.Errno) {
	t.Helper()
	var got unix.Errno
	if !errors.As(err, &got) || got != want {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

// snapshot describes every object of the given trees: type, mode, owner,
// size, mtime, content, link target and xattrs, so that two snapshots differ
// when anything a client could observe was written.
func snapshot(t *testing.T, roots []string) string {
	t.Helper()
	var b strings.Builder
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			must(t, err)
			var st unix.Stat_t
			must(t, unix.Lstat(p, &st))
			fmt.Fprintf(&b, "%s mode=%o uid=%d gid=%d size=%d mtime=%d.%d rdev=%d", p, st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Rdev)
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFREG:
				data, err := os.ReadFile(p)
				must(t, err)
				fmt.Fprintf(&b, " sha256=%x", sha256.Sum256(data))
			case unix.S_IFLNK:
				target, err := os.Readlink(p)
				must(t, err)
				fmt.Fprintf(&b, " target=%q", target)
			}
			if names, err := listXattrPath(p, unix.Llistxattr); err == nil {
				slices.Sort(names)
				for _, n := range names {
					v, _ := getXattrPath(p, n, unix.Lgetxattr)
					fmt.Fprintf(&b, " %s=%q", n, v)
				}
			}
			b.WriteString("\n")
			return nil
		})
	}
	return b.String()
}
