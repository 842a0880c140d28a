package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/union9p/union9p/test/vm/fixture"
	"golang.org/x/sys/unix"
)

// Metadata-only copy-up: the "local" union (mount -t union9p) and the
// guest's overlayfs reference are mounted with metacopy=on, the host
// unions without. What a client sees must be the same either way: a
// metadata change keeps the data, wherever the file goes afterwards,
// and the first write or truncate works on the whole data.
func init() { checks = append(checks, metacopyChecks...) }

var metacopyChecks = []check{
	{"metacopy-chown-keeps-data", func(t *T) {
		t.OK("chown", os.Lchown(t.P("mc/own.bin"), 1000, 1000))
		t.OK("chmod", os.Chmod(t.P("mc/own.bin"), 0o600))
		st := t.Lstat("mc/own.bin")
		if st.Uid != 1000 || st.Mode&0o7777 != 0o600 || st.Size != int64(len(fixture.MetacopyData())) {
			t.Errorf("after chown+chmod: uid %d mode %o size %d", st.Uid, st.Mode&0o7777, st.Size)
		}
		got, err := os.ReadFile(t.P("mc/own.bin"))
		t.OK("read", err)
		if !bytes.Equal(got, fixture.MetacopyData()) {
			t.Errorf("read after chown: %d bytes, not the lower data", len(got))
		}
	}},
	{"metacopy-rename-keeps-data", func(t *T) {
		t.OK("chmod", os.Chmod(t.P("mc/mv.txt"), 0o640))
		t.OK("rename", os.Rename(t.P("mc/mv.txt"), t.P("mc/moved.txt")))
		t.WantContent("mc/moved.txt", "lower mv.txt\n")
		t.OK("move", os.Rename(t.P("mc/moved.txt"), t.P("mc/sub/moved.txt")))
		t.WantContent("mc/sub/moved.txt", "lower mv.txt\n")
		t.WantGone("mc/mv.txt")
	}},
	{"metacopy-then-write", func(t *T) {
		t.OK("chmod", os.Chmod(t.P("mc/w.txt"), 0o640))
		f, err := os.OpenFile(t.P("mc/w.txt"), os.O_WRONLY|os.O_APPEND, 0)
		t.OK("open for append", err)
		if err == nil {
			_, err = f.WriteString("more\n")
			t.OK("write", err)
			t.OK("close", f.Close())
		}
		t.WantContent("mc/w.txt", "lower w.txt\nmore\n")
	}},
	{"metacopy-then-truncate", func(t *T) {
		t.OK("chmod", os.Chmod(t.P("mc/trunc.txt"), 0o640))
		t.OK("truncate", unix.Truncate(t.P("mc/trunc.txt"), 5))
		t.WantContent("mc/trunc.txt", "lower")
	}},
	{"metacopy-link-keeps-data", func(t *T) {
		t.OK("chmod", os.Chmod(t.P("mc/l.txt"), 0o640))
		t.OK("link", os.Link(t.P("mc/l.txt"), t.P("mc/sub/l2.txt")))
		t.WantContent("mc/l.txt", "lower l.txt\n")
		t.WantContent("mc/sub/l2.txt", "lower l.txt\n")
		a, b := t.Lstat("mc/l.txt"), t.Lstat("mc/sub/l2.txt")
		if a.Nlink != 2 || b.Nlink != 2 {
			t.Errorf("after link: nlink %d/%d, want 2", a.Nlink, b.Nlink)
		}
	}},
}

// upperMetacopy checks, after the suite ran on a union mounted with
// metacopy=on, that its upper holds metadata-only copies where overlayfs
// would: the chowned file has no data blocks and the marker, the renamed
// one also a redirect; the written one has its data and no marker.
func upperMetacopy(upper string) error {
	var st unix.Stat_t
	p := filepath.Join(upper, "mc/own.bin")
	if err := unix.Lstat(p, &st); err != nil {
		return err
	}
	if st.Blocks != 0 || st.Size != int64(len(fixture.MetacopyData())) {
		return fmt.Errorf("%s: size %d, %d blocks; want the lower's size and no data", p, st.Size, st.Blocks)
	}
	for _, c := range []struct {
		path, xattr string
		want        bool
	}{
		{"mc/own.bin", "trusted.overlay.metacopy", true},
		{"mc/sub/moved.txt", "trusted.overlay.metacopy", true},
		{"mc/sub/moved.txt", "trusted.overlay.redirect", true},
		{"mc/w.txt", "trusted.overlay.metacopy", false},
	} {
		_, err := unix.Lgetxattr(filepath.Join(upper, c.path), c.xattr, nil)
		if (err == nil) != c.want {
			return fmt.Errorf("%s: %s: %v (want present: %v)", c.path, c.xattr, err, c.want)
		}
	}
	return nil
}
