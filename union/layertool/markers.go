package layertool

import (
	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// Reading the markers of one layer, as union reads them: whiteouts and
// opaque directories in the stack's namespace in every layer, OCI ".wh."
// files in lower layers only.

// isWhiteout reports whether the entry name of dirfd (lstat st) in layer l
// is a whiteout in the overlay formats.
func (s *stack) isWhiteout(dirfd int, name string, st *unix.Stat_t) bool {
	return whiteout.IsWhiteout(dirfd, name, st, s.ns)
}

// isOpaque reports whether the directory open at fd, in layer l, hides the
// layers below it.
func (s *stack) isOpaque(l *layer, fd int) bool {
	if whiteout.ReadDirState(fd, s.ns).Opaque {
		return true
	}
	return l.lower && whiteout.IsOCIOpaque(fd)
}

// ociHidden returns, for a lower layer's directory listing, the names its
// ".wh.NAME" files hide in the layers below; nil for an upper.
func ociHidden(l *layer, names []string) map[string]bool {
	if !l.lower {
		return nil
	}
	var out map[string]bool
	for _, n := range names {
		if h, ok := whiteout.IsOCIMarker(n); ok && h != "" {
			if out == nil {
				out = map[string]bool{}
			}
			out[h] = true
		}
	}
	return out
}

// isMarkerName reports whether name in layer l is an OCI marker file rather
// than an entry.
func isMarkerName(l *layer, name string) bool {
	if !l.lower {
		return false
	}
	_, ok := whiteout.IsOCIMarker(name)
	return ok
}
