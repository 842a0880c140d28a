package layertool

import (
	"fmt"
	"path/filepath"
	"strings"
)

// absPath resolves a directory the user named, symbolic links included.
func absPath(p string) (string, error) {
	a, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(a); err == nil {
		a = r
	}
	return a, nil
}

// within reports whether path p is dir or lies below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// checkApart refuses directories that contain each other (a tool writing
// one would change the other), as union.Open does.
func checkApart(named map[string]string) error {
	abs := map[string]string{}
	for role, p := range named {
		if p == "" {
			continue
		}
		a, err := absPath(p)
		if err != nil {
			return fmt.Errorf("%s %q: %w", role, p, err)
		}
		abs[role] = a
	}
	for r1, a1 := range abs {
		for r2, a2 := range abs {
			if r1 != r2 && within(a1, a2) {
				return fmt.Errorf("%s %q lies inside %s %q", r1, named[r1], r2, named[r2])
			}
		}
	}
	return nil
}

// roles names the layers of l for checkApart.
func (l Layers) roles() map[string]string {
	m := map[string]string{"upperdir": l.Upper, "workdir": l.Workdir}
	for i, p := range l.Lowers {
		m[fmt.Sprintf("lowerdir %d", i+1)] = p
	}
	return m
}
