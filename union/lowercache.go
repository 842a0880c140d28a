package union

import (
	"sync"

	"golang.org/x/sys/unix"
)

// Deep stacks: a name looked up in a directory merged over many lower
// layers is asked of every layer (an lstat, and a stat for an OCI ".wh."
// marker, per layer), which made a lookup over 40 lowers cost four times
// one over a single layer. Lower layers never change (the product's
// promise), so what a lower directory holds is learned once, with one
// getdents pass, and kept: a lookup then asks the host only in the layers
// whose directory has the name (or its ".wh." marker), like overlayfs's
// negative dentries but shared by every lookup in that directory. The
// upper layer is always asked: it changes.
//
// The sets are keyed by the lower directory's inode, held by the lowerObj
// of every Node that merges the directory, and immutable once loaded.

// maxNameSets and maxCachedNames bound the cache, in directories and in
// names loaded in all (the server's heap must not grow with the names ever
// looked up: issue 8); when either is reached it is emptied (sets still
// held by Nodes stay valid, and go with them).
const (
	maxNameSets    = 4096
	maxCachedNames = 1 << 16
)

// maxNameSetEntries: directories larger than this are not cached (they
// are asked name by name as before), to bound memory.
const maxNameSetEntries = 1 << 16

// nameSet is the set of names of one lower directory.
type nameSet struct {
	once  sync.Once
	names map[string]struct{} // nil: not usable (too big, or unreadable)
	cache *nameSets           // counts the names loaded
}

// has reports whether the directory dirfd (whose set this is) holds name,
// and whether the answer is known; when not known the caller asks the
// host.
func (s *nameSet) has(dirfd int, name string) (has, known bool) {
	if s == nil {
		return false, false
	}
	s.once.Do(func() {
		ents, err := readDirents(dirfd)
		if err != nil || len(ents) > maxNameSetEntries {
			return
		}
		m := make(map[string]struct{}, len(ents))
		for _, e := range ents {
			m[e.name] = struct{}{}
		}
		s.names = m
		if s.cache != nil {
			s.cache.loaded(len(m))
		}
	})
	if s.names == nil {
		return false, false
	}
	_, has = s.names[name]
	return has, true
}

// nameSets is the union's cache of lower directories' name sets.
type nameSets struct {
	mu    sync.Mutex
	m     map[inodeKey]*nameSet
	names int // names loaded by the sets in m
	limit int // maxCachedNames, or less in tests
}

// loaded counts n names loaded by a set of c, and empties c when they are
// too many.
func (c *nameSets) loaded(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names += n
	limit := c.limit
	if limit == 0 {
		limit = maxCachedNames
	}
	if c.names > limit {
		c.m, c.names = nil, 0
	}
}

// of returns the set of the lower directory st describes (loaded on first
// use).
func (c *nameSets) of(st *unix.Stat_t) *nameSet {
	k := inodeKey{st.Dev, st.Ino}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.m[k]; s != nil {
		return s
	}
	if c.m == nil || len(c.m) >= maxNameSets {
		c.m, c.names = make(map[inodeKey]*nameSet), 0
	}
	s := &nameSet{cache: c}
	c.m[k] = s
	return s
}
