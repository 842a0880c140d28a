package difftest

import (
	"errors"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// An OCI layer has no redirects, so export writes a renamed directory as
// an opaque one holding copies of its lower content. A lower file counts
// links in its own layer, hidden names included (the kernel's overlayfs
// reports that count), and the copy can only carry the names the merged
// tree shows: layertool's TestExportRenamedDirKeepsVisibleHardLinks has
// the shape. For such copies alone the imported tree may count fewer
// links; everything else must match exactly.

// copiedThroughRedirect returns the non-directories of tree that the upper
// does not hold and that lie below a directory the upper redirects: the
// lower files export copies.
func copiedThroughRedirect(t *testing.T, upper string, tree mergedTree) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	buf := make([]byte, 4096)
	for p, d := range tree {
		if p == "" || isDirDescription(d) {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(upper, p), &st); !errors.Is(err, unix.ENOENT) {
			continue
		}
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if _, err := unix.Lgetxattr(filepath.Join(upper, dir), "trusted.overlay.redirect", buf); err == nil {
				out[p] = true
				break
			}
		}
	}
	return out
}

// nlinkOf returns the link count in a description, -1 without one.
func nlinkOf(d string) int {
	for _, f := range strings.Fields(d) {
		if v, ok := strings.CutPrefix(f, "nlink="); ok {
			n, err := strconv.Atoi(v)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// withCopiedLinks returns got with the link count of each path of copied
// set to want's where got counts at least one link and no more than want:
// the names a copy lost were hidden ones. Other differences stay for
// requireSameTree to report.
func withCopiedLinks(want, got mergedTree, copied map[string]bool) mergedTree {
	out := make(mergedTree, len(got))
	for p, d := range got {
		out[p] = d
		w, ok := want[p]
		if !copied[p] || !ok {
			continue
		}
		if g, n := nlinkOf(d), nlinkOf(w); g >= 1 && g < n {
			out[p] = strings.Replace(d, "nlink="+strconv.Itoa(g), "nlink="+strconv.Itoa(n), 1)
		}
	}
	return out
}
