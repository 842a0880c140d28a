package main

import (
	"os"
)

// Directory renames with lower parts. union9p (redirect_dir=on, its
// default) and the guest's overlayfs (mounted with redirect_dir=on) must
// both rename them in place, leave nothing at the old name, and show the
// merged content at the new one, also after further changes.
func init() { checks = append(checks, renameDirChecks...) }

var renameDirChecks = []check{
	{"rename-dir-populated", func(t *T) {
		t.OK("rename", os.Rename(t.P("rdir/pop/d"), t.P("rdir/pop/d2")))
		t.WantGone("rdir/pop/d")
		t.WantList("rdir/pop", "d2")
		t.WantList("rdir/pop/d2", "sub", "x", "z")
		t.WantContent("rdir/pop/d2/sub/y", "y\n")
		t.WantContent("rdir/pop/d2/z", "z\n")
		// Renamed back: the old name shows it again.
		t.OK("rename back", os.Rename(t.P("rdir/pop/d2"), t.P("rdir/pop/d")))
		t.WantList("rdir/pop", "d")
		t.WantList("rdir/pop/d", "sub", "x", "z")
	}},
	{"rename-dir-empty", func(t *T) {
		t.OK("rename", os.Rename(t.P("rdir/empty/d"), t.P("rdir/empty/e")))
		t.WantGone("rdir/empty/d")
		t.WantList("rdir/empty/e")
		t.Write("rdir/empty/e/new", "new\n")
		t.WantList("rdir/empty/e", "new")
	}},
	{"rename-dir-into-merged-dir", func(t *T) {
		t.OK("rename", os.Rename(t.P("rdir/mv/d"), t.P("rdir/mv/dest/d")))
		t.WantGone("rdir/mv/d")
		t.WantList("rdir/mv", "dest")
		t.WantList("rdir/mv/dest", "a", "b", "d")
		t.WantList("rdir/mv/dest/d", "sub", "x", "z")
		t.WantContent("rdir/mv/dest/d/sub/y", "y\n")
		// A subdirectory moved out again, through the first redirect.
		t.OK("rename sub out", os.Rename(t.P("rdir/mv/dest/d/sub"), t.P("rdir/mv/sub")))
		t.WantList("rdir/mv", "dest", "sub")
		t.WantContent("rdir/mv/sub/y", "y\n")
		t.WantList("rdir/mv/dest/d", "x", "z")
	}},
	{"rename-dir-then-remove", func(t *T) {
		t.OK("rename", os.Rename(t.P("rdir/rm/d"), t.P("rdir/rm/gone")))
		for _, p := range []string{"rdir/rm/gone/sub/y", "rdir/rm/gone/x", "rdir/rm/gone/z"} {
			t.OK("unlink "+p, os.Remove(t.P(p)))
		}
		t.OK("rmdir sub", os.Remove(t.P("rdir/rm/gone/sub")))
		t.OK("rmdir", os.Remove(t.P("rdir/rm/gone")))
		t.WantGone("rdir/rm/gone")
		t.WantGone("rdir/rm/d")
		t.WantList("rdir/rm")
		// The name is free again, and a new directory there is empty.
		t.OK("mkdir", os.Mkdir(t.P("rdir/rm/d"), 0o755))
		t.WantList("rdir/rm/d")
	}},
}
