package union

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Node is one name of the merged tree: the one Node of its object that
// every holder shares (nodetable.go). A Node is reference counted: Lookup,
// Root and the create calls return a reference; Retain adds one and
// Release drops one, closing the host descriptors with the last.
type Node struct {
	u    *Union
	refs atomic.Int32

	// hashed: n is in the union's node table. Guarded by nodeTable.mu.
	hashed bool

	// mu guards the fields below (parent and name are also guarded by
	// nodeTable.mu: see nodetable.go). It is never held while another
	// Node's mu is taken, nor across a host call that may block for long.
	mu     sync.Mutex
	parent *Node // nil for the root
	name   string
	upper  int        // O_PATH descriptor of the upper object, or -1; set once, by copy-up
	lowers []lowerObj // a directory's merged lower directories, top-down; else at most one object
	typ    uint32     // S_IFMT bits; never changes for a Node
	id     uint64     // stable id; never changes for a Node

	// upperDev, upperIno: st_dev and st_ino of the upper object as the
	// lookup or create that made n found it, or zero (n got its upper
	// object by a copy-up). Set before n is shared; never changed. A
	// lookup that finds this very object at n's place answers n
	// (lookup.go).
	upperDev, upperIno uint64

	// redirected: its lower objects were found by a redirect. Set by
	// fill, before the Node is shared.
	redirected bool
	// metacopy: the object that shows n's metadata (upper, else the
	// first lower) is a metadata-only copy; the data is in the last of
	// lowers. Only ever goes from true to false (metacopy.go).
	metacopy bool
}

// lowerObj is an object in a lower layer.
type lowerObj struct {
	layer *lowerLayer
	fd    int      // O_PATH descriptor
	names *nameSet // a directory's names (lowercache.go); nil if unknown
}

// File is an open regular file or directory of the union.
// ReadAt and WriteAt may be called concurrently.
type File struct {
	node  *Node
	fd    int
	flags int
	dir   *dirStream // for directories
}

// Retain adds a reference to n and returns it.
func (n *Node) Retain() *Node {
	n.refs.Add(1)
	return n
}

// Release drops a reference; the last one takes n out of the node table,
// closes its host descriptors and releases its parent.
func (n *Node) Release() {
	if n.refs.Add(-1) != 0 {
		return
	}
	t := &n.u.nodes
	t.mu.Lock()
	t.removeLocked(n)
	t.mu.Unlock()
	n.closeFds()
	n.mu.Lock()
	p := n.parent
	n.parent = nil
	n.mu.Unlock()
	if p != nil {
		p.Release()
	}
}

func (n *Node) closeFds() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.upper >= 0 {
		unix.Close(n.upper)
		n.upper = -1
	}
	for _, l := range n.lowers {
		unix.Close(l.fd)
	}
	n.lowers = nil
}

// Path returns n's path from the union root, for messages and logs.
func (n *Node) Path() string {
	var parts []string
	for c := n; c != nil; {
		c.mu.Lock()
		p, name := c.parent, c.name
		c.mu.Unlock()
		if p == nil {
			break
		}
		parts = append(parts, name)
		c = p
	}
	if len(parts) == 0 {
		return "/"
	}
	s := ""
	for i := len(parts) - 1; i >= 0; i-- {
		s += "/" + parts[i]
	}
	return s
}

// state returns a consistent snapshot of n's objects. The descriptors stay
// valid while the caller holds a reference to n.
func (n *Node) state() (upper int, lowers []lowerObj, parent *Node, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.upper, n.lowers, n.parent, n.name
}

// upperFd returns the descriptor of n's upper object, or -1.
func (n *Node) upperFd() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.upper
}

// lowerFd returns the descriptor of n's topmost lower object, or -1.
func (n *Node) lowerFd() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.lowers) == 0 {
		return -1
	}
	return n.lowers[0].fd
}

// objFd returns the descriptor of the object that represents n: the upper
// one if there is one, else the topmost lower one.
func (n *Node) objFd() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.upper >= 0 {
		return n.upper
	}
	if len(n.lowers) > 0 {
		return n.lowers[0].fd
	}
	return -1
}
