package union

import (
	"sync"

	"golang.org/x/sys/unix"
)

// A merged listing costs a read of every layer's directory and a stat per
// whiteout; clients list the same directories again and again (each
// opendir reads from cookie 0). The union keeps recent listings and hands
// them out while nothing that could change them happened:
//
//   - lower layers never change (the product's promise);
//   - every namespace change made through the union bumps nsGen when it
//     completes, so a listing taken before it is not used after it;
//   - a change made on the host behind the union's back shows in the upper
//     directory's ctime.
//
// Listings are immutable once stored and may be shared by many open
// directories.

// maxCachedListings bounds the cache; when full it is emptied.
const maxCachedListings = 256

type listingKey struct {
	nsGen      uint64
	upperIno   uint64
	upperCtime unix.Timespec
	layers     int
}

type cachedListing struct {
	key     listingKey
	entries []Dirent
}

// listingCache maps a directory's stable id to its last listing. Safe for
// concurrent use.
type listingCache struct {
	mu sync.Mutex
	m  map[uint64]cachedListing
}

func (c *listingCache) get(id uint64, key listingKey) []Dirent {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.m[id]; ok && l.key == key {
		return l.entries
	}
	return nil
}

func (c *listingCache) put(id uint64, key listingKey, entries []Dirent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedListings {
		c.m = make(map[uint64]cachedListing)
	}
	c.m[id] = cachedListing{key: key, entries: entries}
}

// listingKey describes what n's listing depends on. It must be taken
// before the layers are read.
func (n *Node) listingKey() (listingKey, bool) {
	up, lowers, _, _ := n.state()
	k := listingKey{nsGen: n.u.nsGen.Load(), layers: len(lowers)}
	if up >= 0 {
		var st unix.Stat_t
		if fstat(up, &st) != nil {
			return k, false
		}
		k.upperIno, k.upperCtime = st.Ino, st.Ctim
		k.layers++
	}
	return k, true
}

// namespaceChanged is deferred by every operation that may change what a
// directory lists; it runs when the change is complete.
func (u *Union) namespaceChanged() { u.nsGen.Add(1) }
