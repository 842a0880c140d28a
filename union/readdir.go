package union

import (
	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// ReadDir returns up to max entries that follow cookie in the directory's
// merged listing; an empty result means the end. Cookie 0 starts over and
// takes a fresh listing (this is how a rewind is seen). "." and ".." come
// first. Safe for concurrent use.
func (f *File) ReadDir(cookie uint64, max int) ([]Dirent, error) {
	d := f.dir
	if d == nil {
		return nil, unix.ENOTDIR
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if cookie == 0 || !d.valid {
		ents, err := f.node.listMergedCached()
		if err != nil {
			return nil, err
		}
		d.entries, d.valid = ents, true
	}
	if cookie >= uint64(len(d.entries)) {
		return nil, nil
	}
	end := cookie + uint64(max)
	if max <= 0 || end > uint64(len(d.entries)) {
		end = uint64(len(d.entries))
	}
	return d.entries[cookie:end], nil
}

// listMergedCached is listMerged, answered from the union's listing cache
// when nothing that could change the listing happened since it was taken.
func (n *Node) listMergedCached() ([]Dirent, error) {
	u := n.u
	if ents, handled, err := n.listSharedCached(); handled {
		return ents, err
	}
	key, ok := n.listingKey()
	if !ok {
		return n.listMerged()
	}
	if ents := u.listings.get(n.id, key); ents != nil {
		return ents, nil
	}
	ents, err := n.listMerged()
	if err == nil {
		u.listings.put(n.id, key, ents)
	}
	return ents, err
}

// listMerged lists the directory n as the union shows it: the upper layer's
// entries, then each lower layer's that no higher layer had or whited out,
// markers left out.
func (n *Node) listMerged() ([]Dirent, error) {
	up, lowers, parent, _ := n.state()
	u := n.u

	out := make([]Dirent, 0, 64)
	out = append(out, Dirent{Name: ".", ID: n.id, Type: unix.DT_DIR})
	dotdot := n.id
	if parent != nil {
		dotdot = parent.id
	}
	out = append(out, Dirent{Name: "..", ID: dotdot, Type: unix.DT_DIR})

	merged := (up >= 0 && len(lowers) > 0) || len(lowers) > 1
	var seen map[string]int // name -> index in out, or -1 when hidden
	if merged {
		seen = make(map[string]int)
	}

	layers := make([]int, 0, 1+len(lowers))
	if up >= 0 {
		layers = append(layers, up)
	}
	for _, l := range lowers {
		layers = append(layers, l.fd)
	}
	upperEntries := 0 // out[2:upperEntries] came from the upper layer
	for li, dirfd := range layers {
		isLower := li > 0 || up < 0
		var dst unix.Stat_t
		if err := fstat(dirfd, &dst); err != nil {
			return nil, err
		}
		ents, err := readDirents(dirfd)
		if err != nil {
			return nil, err
		}
		xattrWhiteouts := u.dirHasXattrWhiteouts(dirfd)
		var ociHidden []string
		for _, e := range ents {
			if isLower {
				if hidden, marker := whiteout.IsOCIMarker(e.name); marker {
					if hidden != "" {
						ociHidden = append(ociHidden, hidden)
					}
					continue
				}
			}
			if seen != nil {
				if i, dup := seen[e.name]; dup {
					// Shown from the upper layer and also found below: the
					// upper object may be a copy of a lower one, whose id
					// it carries as its origin, as Lookup reports it.
					if i >= 0 && i < upperEntries {
						if id := u.readOriginAt(up, e.name); id != 0 {
							out[i].ID = id
						}
						seen[e.name] = -1 // looked at once is enough
					}
					continue
				}
			}
			typ := dtOrStat(dirfd, e)
			if typ == unix.DT_CHR || (xattrWhiteouts && typ == unix.DT_REG) {
				var st unix.Stat_t
				if lstatAt(dirfd, e.name, &st) == nil && u.isWhiteout(dirfd, e.name, &st) {
					if seen != nil {
						seen[e.name] = -1
					}
					continue
				}
			}
			if seen != nil {
				seen[e.name] = len(out)
			}
			out = append(out, Dirent{Name: e.name, ID: u.idFor(dst.Dev, e.ino), Type: typ})
		}
		if li == 0 && up >= 0 {
			upperEntries = len(out)
		}
		if seen != nil {
			for _, h := range ociHidden {
				if _, dup := seen[h]; !dup {
					seen[h] = -1
				}
			}
		}
	}
	for i := range out {
		out[i].Cookie = uint64(i + 1)
	}
	return out, nil
}

// dtOrStat returns the entry's DT_* type, asking the host when the
// directory listing did not say.
func dtOrStat(dirfd int, e hostDirent) uint8 {
	if e.typ != unix.DT_UNKNOWN {
		return e.typ
	}
	var st unix.Stat_t
	if lstatAt(dirfd, e.name, &st) != nil {
		return unix.DT_UNKNOWN
	}
	return uint8(st.Mode & unix.S_IFMT >> 12)
}
