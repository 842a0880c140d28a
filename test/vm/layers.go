package main

import (
	"os"
	"path/filepath"

	"github.com/union9p/union9p/test/vm/fixture"
)

// hostLayers are the layers the host serves to the guest: three unions
// over the same lowers, with their own uppers (upper2 for the access=user
// one, upper3 for the one on the virtfs transport).
type hostLayers struct {
	top, bottom, upper, work, upper2, work2, upper3, work3 string
	upper4, work4                                          string // the union on the virtiofs transport
}

func newHostLayers(dir string) (*hostLayers, error) {
	l := &hostLayers{
		top:    filepath.Join(dir, "l1"),
		bottom: filepath.Join(dir, "l2"),
		upper:  filepath.Join(dir, "upper"),
		work:   filepath.Join(dir, "work"),
		upper2: filepath.Join(dir, "upper2"),
		work2:  filepath.Join(dir, "work2"),
		upper3: filepath.Join(dir, "upper3"),
		work3:  filepath.Join(dir, "work3"),
		upper4: filepath.Join(dir, "upper4"),
		work4:  filepath.Join(dir, "work4"),
	}
	for _, d := range []string{l.top, l.bottom, l.upper, l.work, l.upper2, l.work2, l.upper3, l.work3, l.upper4, l.work4} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	return l, fixture.Build(l.top, l.bottom)
}

// lowerManifest describes both lowers exactly (times, inode numbers,
// private xattrs), to prove that the run did not change them.
func (l *hostLayers) lowerManifest() ([]string, error) {
	o := fixture.ManifestOptions{Times: true, Private: true, DirNlink: true}
	a, err := fixture.Manifest(l.top, o)
	if err != nil {
		return nil, err
	}
	b, err := fixture.Manifest(l.bottom, o)
	if err != nil {
		return nil, err
	}
	for i := range a {
		a[i] = "l1/" + a[i]
	}
	for i := range b {
		b[i] = "l2/" + b[i]
	}
	return append(a, b...), nil
}
