package union

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Node is one name of the merged tree, as found by a lookup. See the package
// comment for how Nodes relate to each other. A Node is reference counted:
// Lookup and the create calls return a Node with one reference; Retain adds
// one and Release drops one, closing the host descriptors with the last.
type Node struct {
	u    *Union
	refs atomic.Int32

	// mu guards the fields below. It is never held while another Node's
	// mu is taken, nor across a host call that may block for long.
	mu     sync.Mutex
	parent *Node // nil for the root
	name   string
	upper  int        // O_PATH descriptor of the upper object, or -1
	lowers []lowerObj // a directory's merged lower directories, top-down; else at most one object
	typ    uint32     // S_IFMT bits; never changes for a Node
	id     uint64     // stable id; 0 until known

	// seenGen is the Union's upperGen when refreshUpper last looked.
	seenGen uint64
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

// Release drops a reference; the last one closes n's host descriptors and
// releases its parent.
func (n *Node) Release() {
	if n.refs.Add(-1) != 0 {
		return
	}
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

// Moved tells n that its name is now newName in newParent (after a rename
// made through another Node). It may not fail.
func (n *Node) Moved(newParent *Node, newName string) {
	np := newParent.Retain()
	n.mu.Lock()
	old := n.parent
	n.parent = np
	n.name = newName
	n.mu.Unlock()
	if old != nil {
		old.Release()
	}
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
