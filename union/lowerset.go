package union

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// LowerSet is the read-only side of a union: the lower layers, opened
// once, and what the unions over them learn about them: which names each
// lower directory holds (lowercache.go), the numbering of filesystems in
// stable ids (ident.go), and the merged listings of directories that have
// no upper part (listcache.go). A server with many tenants (issue 10)
// opens one LowerSet and gives it to every tenant's union
// (Options.LowerSet), so a hundred unions over one base tree cache it
// once rather than a hundred times.
//
// Nothing a union does invalidates this state: lower layers are never
// written (the product's promise), so what they hold stays true for every
// union, and a union's own changes live in its upper layer, which the set
// does not describe. A listing is shared only while the directory has no
// upper part in the union that reads it; one with an upper part is cached
// by that union alone (Union.listings).
//
// Concurrency: every method, and the state inside, is safe for concurrent
// use by any number of unions (each cache has its own mutex, held only
// for a map access). Close it after every union opened with it is closed.
type LowerSet struct {
	paths  []string // absolute, symbolic links resolved
	layers []*lowerLayer

	devs     devIndex
	names    nameSets
	listings sharedListings // of directories without an upper part

	closeOnce sync.Once
}

// OpenLowers opens the lower layers lowers (topmost first). sameFS, if not
// empty, is a directory on the filesystem of the unions' upper layers: it
// is numbered first in stable ids, as a union opened on its own numbers
// its upper first, so that ids (which copy-ups record as origins) are the
// same either way.
func OpenLowers(lowers []string, sameFS string) (*LowerSet, error) {
	if len(lowers) == 0 {
		return nil, errors.New("union: no lower layers")
	}
	var abs []string
	for _, l := range lowers {
		a, err := checkLayerDir("lowerdir", l)
		if err != nil {
			return nil, err
		}
		abs = append(abs, a)
	}
	return openLowers(abs, lowers, sameFS)
}

// openLowers opens the layers at the absolute paths abs (given as the
// user wrote them, for messages); sameFS as OpenLowers's.
func openLowers(abs, given []string, sameFS string) (*LowerSet, error) {
	s := &LowerSet{paths: abs}
	s.devs.devs = make(map[uint64]uint64)
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	if sameFS != "" {
		var st unix.Stat_t
		if err := unix.Stat(sameFS, &st); err != nil {
			return nil, fmt.Errorf("union: %s: %w", sameFS, err)
		}
		if _, err := s.devs.index(st.Dev); err != nil {
			return nil, err
		}
	}
	for i, a := range abs {
		layer, err := openLowerLayer(a, i+1)
		if err != nil {
			return nil, fmt.Errorf("union: lowerdir %q: %w", given[i], err)
		}
		s.layers = append(s.layers, layer)
		var st unix.Stat_t
		if err := fstat(layer.fd, &st); err != nil {
			return nil, err
		}
		if _, err := s.devs.index(st.Dev); err != nil {
			return nil, err
		}
	}
	ok = true
	return s, nil
}

// Paths returns the layers' absolute paths, topmost first.
func (s *LowerSet) Paths() []string { return append([]string(nil), s.paths...) }

// Close closes the layers. No union opened with the set may be used
// afterwards.
func (s *LowerSet) Close() error {
	s.closeOnce.Do(func() {
		for _, l := range s.layers {
			unix.Close(l.fd)
		}
	})
	return nil
}

// sharedListingKey is what the merged listing of a directory without an
// upper part depends on: its lower objects (the topmost and the
// bottommost stand for the stack found between them, which lookups
// derive from them alone) and its id ("."). Its parent's id ("..") is not
// in the key: a top-level directory's parent is the root, whose id is that
// of each union's own upper root; the entry is mended per union instead.
type sharedListingKey struct {
	id       uint64
	layers   int
	top, bot inodeKey
}

// sharedListingKey returns n's key in the set's listing cache, if n has no
// upper part (ok false otherwise, or when a stat fails), and the id of
// its parent.
func (n *Node) sharedListingKey() (k sharedListingKey, parentID uint64, ok bool) {
	up, lowers, parent, _ := n.state()
	if up >= 0 || len(lowers) == 0 {
		return k, 0, false
	}
	k.id, k.layers = n.id, len(lowers)
	parentID = n.id
	if parent != nil {
		parentID = parent.id
	}
	var st unix.Stat_t
	if fstat(lowers[0].fd, &st) != nil {
		return k, 0, false
	}
	k.top = inodeKey{st.Dev, st.Ino}
	if fstat(lowers[len(lowers)-1].fd, &st) != nil {
		return k, 0, false
	}
	k.bot = inodeKey{st.Dev, st.Ino}
	return k, parentID, true
}

// listSharedCached answers listMergedCached for a directory without an
// upper part from the set's cache, shared by every union over the set.
// handled is false when n has an upper part (the union's own cache then
// applies).
func (n *Node) listSharedCached() (ents []Dirent, handled bool, err error) {
	k, parentID, ok := n.sharedListingKey()
	if !ok {
		return nil, false, nil
	}
	c := &n.u.lowerSet.listings
	if ents := c.get(k); ents != nil {
		if ents[1].ID != parentID {
			// "..", listed by another union: a copy for this one
			// (held by the open directory, not cached).
			ents = slices.Clone(ents)
			ents[1].ID = parentID
		}
		return ents, true, nil
	}
	ents, err = n.listMerged()
	// Stored only if n still has no upper part: an upper object is
	// adopted once and kept, so none was there when listMerged looked
	// either, and the listing shows the lower layers only.
	if err == nil && n.upperFd() < 0 {
		c.put(k, ents)
	}
	return ents, true, err
}

// maxSharedListings bounds the set's listing cache; when full it is
// emptied (listings still held by open directories stay valid).
const maxSharedListings = 1024

// sharedListings maps directories without an upper part to their merged
// listing, which is immutable once stored. Safe for concurrent use.
type sharedListings struct {
	mu sync.Mutex
	m  map[sharedListingKey][]Dirent
}

func (c *sharedListings) get(k sharedListingKey) []Dirent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *sharedListings) put(k sharedListingKey, ents []Dirent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxSharedListings {
		c.m = make(map[sharedListingKey][]Dirent)
	}
	c.m[k] = ents
}
