package union

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCopyUpOwnerAndModeExact: a copy-up for a change that is not of the
// owner or mode (an xattr) gives the upper file exactly the lower's owner
// and mode, whether or not the copy is made with them already (root's own
// 0644 file) and whatever the server's umask takes from the mode it is
// made with (0666, 0777 under umask 022), setuid included, with the full
// copy and with the metadata-only one.
func TestCopyUpOwnerAndModeExact(t *testing.T) {
	type file struct {
		name     string
		uid, gid int
		mode     uint32
	}
	files := []file{
		{"own", 0, 0, 0o644},
		{"wide", 0, 0, 0o666},
		{"exec", 0, 0, 0o777},
		{"other", 1234, 5678, 0o640},
		{"none", 0, 0, 0},
		{"setuid", 0, 0, 0o4755},
		{"setgid", 1234, 5678, 0o2750},
	}
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	for _, metacopy := range []bool{false, true} {
		t.Run(fmt.Sprintf("metacopy=%v", metacopy), func(t *testing.T) {
			var layout []string
			for _, f := range files {
				layout = append(layout, "d/"+f.name+"=data")
			}
			tu := newUnion(t, nil, layout)
			for _, f := range files {
				p := filepath.Join(tu.lowers[0], "d", f.name)
				must(t, os.Chown(p, f.uid, f.gid))
				must(t, unix.Chmod(p, f.mode))
			}
			tu.setupDone(t)
			if metacopy {
				withMetacopy(t, tu)
			}
			for _, f := range files {
				n := tu.mustWalk(t, "/d/"+f.name)
				must(t, n.SetXattr("user.k", []byte("v"), 0))
				var st unix.Stat_t
				p := filepath.Join(tu.upper, "d", f.name)
				must(t, unix.Lstat(p, &st))
				if int(st.Uid) != f.uid || int(st.Gid) != f.gid || st.Mode&0o7777 != f.mode {
					t.Errorf("%s: copy is %d:%d %o, want %d:%d %o", p, st.Uid, st.Gid, st.Mode&0o7777, f.uid, f.gid, f.mode)
				}
				_, err := unix.Lgetxattr(p, "trusted.overlay.metacopy", nil)
				if metacopy != (err == nil) {
					t.Errorf("%s: metacopy marker: %v (metacopy=%v)", p, err, metacopy)
				}
				if got, _ := readAllNode(tu.mustWalk(t, "/d/"+f.name)); got != "data" {
					t.Errorf("%s: reads %q", p, got)
				}
			}
		})
	}
}
