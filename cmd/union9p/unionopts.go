package main

import (
	"fmt"
	"strings"

	"github.com/union9p/union9p/union"
)

// The union's overlayfs feature options, as `-o` takes them. One parser
// serves `serve`, `mount` (and its server child) and `qemu` (which passes
// serve's flags on):
//
//	redirect_dir=on|follow|off  rename directories with lower parts by
//	                            writing redirects (on, the default), or
//	                            answer EXDEV so that mv copies (follow,
//	                            off); existing redirects are followed
//	                            always, as overlayfs does by default.
//	metacopy=on|off             a change of owner, mode, times or xattrs
//	                            of a lower file copies its metadata only
//	                            (on), or all of it (off, the default, as
//	                            overlayfs). on needs redirect_dir=on.
//
// Unlike overlayfs, union9p defaults to redirect_dir=on: a 9P client has
// no other way to rename such a directory than copying it.

// defaultFeatures gives o the commands' default features.
func defaultFeatures(o *union.Options) {
	o.RedirectDir = union.RedirectOn
}

// applyFeatureOption applies one KEY=VALUE option to o if it is a feature
// option; ok is false for other keys.
func applyFeatureOption(o *union.Options, key, val string) (ok bool, err error) {
	switch key {
	case "redirect_dir":
		r, valid := union.ParseRedirectDir(val)
		if !valid {
			return true, fmt.Errorf("redirect_dir=%q: want on, follow or off", val)
		}
		o.RedirectDir = r
		return true, nil
	case "metacopy":
		switch val {
		case "on":
			o.Metacopy = true
		case "off":
			o.Metacopy = false
		default:
			return true, fmt.Errorf("metacopy=%q: want on or off", val)
		}
		return true, nil
	}
	return false, nil
}

// featureOptions renders o's features as an -o list, for a child process.
func featureOptions(o union.Options) string {
	mc := "off"
	if o.Metacopy {
		mc = "on"
	}
	return strings.Join([]string{"redirect_dir=" + o.RedirectDir.String(), "metacopy=" + mc}, ",")
}
