package union

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A second union on the same upper or work directory is refused before it
// touches anything: in particular it must not clean the work directory,
// where the first union's copy-ups are in flight.
func TestSecondUnionOnSameLayersIsRefused(t *testing.T) {
	base := t.TempDir()
	lower, upper, work := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work")
	other := filepath.Join(base, "otherwork")
	layout(t, lower, "f=1")
	for _, d := range []string{upper, work, other, filepath.Join(base, "upper2")} {
		must(t, os.Mkdir(d, 0o755))
	}
	first, err := Open(Options{Lowers: []string{lower}, Upper: upper, Workdir: work})
	must(t, err)
	// What an in-flight copy-up of the first union looks like.
	inflight := filepath.Join(work, "work", "#1f")
	must(t, os.WriteFile(inflight, []byte("half a copy"), 0o600))

	for name, opts := range map[string]Options{
		"same layers":  {Lowers: []string{lower}, Upper: upper, Workdir: work},
		"same upper":   {Lowers: []string{lower}, Upper: upper, Workdir: other},
		"same workdir": {Lowers: []string{lower}, Upper: filepath.Join(base, "upper2"), Workdir: work},
	} {
		t.Run(name, func(t *testing.T) {
			u, err := Open(opts)
			if err == nil {
				u.Close()
				t.Fatal("a second union opened layers in use")
			}
			if !IsInUse(err) {
				t.Fatalf("error is not an InUseError: %v", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "in use by another union9p (pid "+strconv.Itoa(os.Getpid())+")") {
				t.Fatalf("message does not name the holder: %s", msg)
			}
			if _, err := os.Stat(inflight); err != nil {
				t.Fatalf("the refused union touched the first one's work directory: %v", err)
			}
			if _, err := os.Stat(filepath.Join(other, "work")); err == nil {
				t.Fatal("the refused union created its work directory")
			}
		})
	}
	// A read-only union of the same lowers needs no lock.
	ro, err := Open(Options{Lowers: []string{lower}})
	must(t, err)
	ro.Close()

	first.Close()
	again, err := Open(Options{Lowers: []string{lower}, Upper: upper, Workdir: work})
	if err != nil {
		t.Fatalf("the layers stay locked after Close: %v", err)
	}
	again.Close()
}

// The tools lock the same way as servers.
func TestLockLayersExcludesUnion(t *testing.T) {
	base := t.TempDir()
	upper, work := filepath.Join(base, "upper"), filepath.Join(base, "work")
	must(t, os.Mkdir(upper, 0o755))
	must(t, os.Mkdir(work, 0o755))
	l, err := LockLayers(upper, work)
	must(t, err)
	if _, err := Open(Options{Upper: upper, Workdir: work}); !IsInUse(err) {
		t.Fatalf("Open while a tool holds the lock: %v", err)
	}
	if _, err := LockLayers("", work); !IsInUse(err) {
		t.Fatalf("second LockLayers: %v", err)
	}
	l.Release()
	l2, err := LockLayers(upper, work)
	must(t, err)
	l2.Release()
}
