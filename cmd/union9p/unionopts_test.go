package main

import (
	"strings"
	"testing"

	"github.com/union9p/union9p/union"
)

// TestFeatureOptions: redirect_dir defaults to on for the commands, takes
// overlayfs's values, refuses others by name, and reaches the server child
// of mount unchanged.
func TestFeatureOptions(t *testing.T) {
	for _, tc := range []struct {
		opts string
		want union.RedirectDir
	}{
		{"lowerdir=/a", union.RedirectOn},
		{"lowerdir=/a,redirect_dir=on", union.RedirectOn},
		{"lowerdir=/a,redirect_dir=follow", union.RedirectFollow},
		{"redirect_dir=off,lowerdir=/a", union.RedirectOff},
	} {
		m, err := parseMountOptions(splitOptionList(tc.opts))
		if err != nil {
			t.Errorf("%s: %v", tc.opts, err)
			continue
		}
		if m.union.RedirectDir != tc.want {
			t.Errorf("%s: redirect_dir %v, want %v", tc.opts, m.union.RedirectDir, tc.want)
		}
		if len(m.nineP) != 0 {
			t.Errorf("%s: passed to the 9p client: %q", tc.opts, m.nineP)
		}
		// What mount hands its server child parses back to the same.
		var child union.Options
		for _, o := range splitOptionList(featureOptions(m.union)) {
			k, v, _ := strings.Cut(o, "=")
			if ok, err := applyFeatureOption(&child, k, v); !ok || err != nil {
				t.Errorf("%s: child option %q: %v %v", tc.opts, o, ok, err)
			}
		}
		if child.RedirectDir != tc.want {
			t.Errorf("%s: the server child gets redirect_dir %v", tc.opts, child.RedirectDir)
		}
	}
	if _, err := parseMountOptions([]string{"lowerdir=/a", "redirect_dir=yes"}); err == nil {
		t.Errorf("redirect_dir=yes accepted")
	}
	if _, err := parseMountOptions([]string{"lowerdir=/a", "metacopy=yes"}); err == nil {
		t.Errorf("metacopy=yes accepted")
	}
	m, err := parseMountOptions([]string{"lowerdir=/a", "metacopy=on"})
	if err != nil || !m.union.Metacopy || m.union.RedirectDir != union.RedirectOn {
		t.Errorf("metacopy=on: %+v, %v", m.union, err)
	}
	var child union.Options
	for _, o := range splitOptionList(featureOptions(m.union)) {
		k, v, _ := strings.Cut(o, "=")
		applyFeatureOption(&child, k, v)
	}
	if !child.Metacopy {
		t.Errorf("metacopy=on does not reach mount's server child")
	}
}
