package difftest

import (
	"io/fs"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// The layer tools run on uppers written with plain features and with
// redirect_dir=on,metacopy=on, through the kernel's overlayfs and union.
// With the latter the tools must follow renamed directories and
// metadata-only copies; the counts below make sure the random workloads
// wrote some, so that the checks are not vacuous.
var toolFeatures = []features{plainFeatures, metacopyFeatures}

type followMarks struct {
	mu                    sync.Mutex
	redirects, metacopies int
}

// countFollowMarks counts the upper's objects with an overlay.redirect and
// with an overlay.metacopy (trusted namespace: these tests run as root).
func countFollowMarks(t *testing.T, upper string) *followMarks {
	t.Helper()
	m := &followMarks{}
	buf := make([]byte, 512)
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, err := unix.Lgetxattr(p, "trusted.overlay.redirect", buf); err == nil {
			m.redirects++
		}
		if _, err := unix.Lgetxattr(p, "trusted.overlay.metacopy", buf); err == nil {
			m.metacopies++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *followMarks) add(t *testing.T, writer, upper string) {
	c := countFollowMarks(t, upper)
	t.Logf("%s wrote %d redirects, %d metadata-only copies", writer, c.redirects, c.metacopies)
	m.mu.Lock()
	m.redirects += c.redirects
	m.metacopies += c.metacopies
	m.mu.Unlock()
}

// require fails when features that allow redirects and metacopy saw the
// workloads write neither.
func (m *followMarks) require(t *testing.T, f features) {
	t.Helper()
	if f.name == plainFeatures.name || t.Failed() {
		return
	}
	if m.redirects == 0 || m.metacopies == 0 {
		t.Errorf("%s: the workloads wrote %d redirects and %d metadata-only copies: the tools' following is not exercised",
			f.name, m.redirects, m.metacopies)
	}
}
