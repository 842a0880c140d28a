package virtfs

import (
	"errors"
	"sync"
	"syscall"

	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// # Letting go of idle objects
//
// A node the kernel knows holds a union.Node, and the union.Node holds
// O_PATH descriptors of its objects in the layers (and keeps its
// ancestors' Nodes). The guest of virtio-fs (Linux 6.1) has no
// notification queue, so the server cannot make it forget objects: it
// keeps every object it ever looked up until its own memory pressure
// sends FORGET. Were every known node to hold its union.Node, a guest
// that stats more entries than the server's descriptor limit would get
// EMFILE for everything (measured: the VM suite's 20,000-entry
// directory).
//
// So a node may let go of its union.Node while it is idle, and keeps
// what it needs to find the object again:
//   - its place in go-fuse's Inode tree (parent Inode and name): go-fuse
//     keeps it current through the LOOKUP, RENAME, UNLINK, RMDIR, LINK
//     and FORGET that pass through this server, and nothing else changes
//     the union's namespace (the lowers never change; the union is the
//     upper's only writer);
//   - the object's stable id (node.id), to check that the name found
//     again names the same object.
//
// The next request on the node (pin) looks its name up again in its
// parent, pinning the parent first: the walk goes up to the nearest
// node that still holds its union.Node (the root always does) and down
// again by the current names, so renames of ancestors are followed. A
// name that is gone, or names another object now, answers ESTALE; the
// guest's VFS then looks the path up again (stat(2) and the other path
// calls retry once on ESTALE).
//
// Which nodes are kept (never let go):
//   - the root;
//   - a node with an open handle (file or directory): a file open and
//     then unlinked has no name to be found by, and fstat(2) on it must
//     work; its union.File keeps the union.Node anyway;
//   - a node with no name in the tree (unlinked, last name gone) is
//     not let go either: nothing could find it again, so it keeps its
//     union.Node until the kernel forgets it (which Linux does when its
//     last open closes). A node let go while named and unlinked after
//     that answers ESTALE: by then the guest can only reach it through
//     an open file, and an open keeps the node held.
//
// Every other node that holds its union.Node is on the held list (most
// recently used first). When the list grows past max, the least
// recently used nodes let go. max derives from the descriptor limit
// (protocol.go); 0 means no node lets go (the host FUSE mount, where
// budget.go makes the kernel forget objects instead).
//
// Descriptors then stay bounded by what the guest is using: max idle
// nodes, the nodes with open handles (bounded by the guest's own open
// files), and the ancestors of all those.
//
// # Concurrency
//
// A request pins the node: it gets a reference of its own to the
// union.Node (pin, then Release when done), so a node letting go of its
// union.Node while a request runs does not close descriptors in use:
// they close with the request's reference. Locks: held.mu guards the
// list (node.prev, next, listed); node.mu guards node.un, opens,
// forgotten and shared. Order: held.mu, then a node's mu, then go-fuse's
// Inode locks (Inode.Parent); go-fuse never calls into this package
// while holding an Inode lock (OnForget runs after it unlocks). No host
// call is made under held.mu or node.mu except closing descriptors of
// the objects let go (done after both are unlocked).
type held struct {
	max int // idle held nodes kept; 0: never let go

	mu         sync.Mutex
	head, tail *node // most recently used first
	count      int
}

// newHeld keeps at most max idle nodes holding their union.Node; max 0
// keeps every node until the kernel forgets it.
func newHeld(max int) *held { return &held{max: max} }

// maxHeldFor is the held list's size for a descriptor limit of nofile:
// a quarter of it, as virtfs's budget allows known objects (budget.go).
// An idle node holds one descriptor per layer it is in, at least one (a
// merged directory one per layer; most objects are in one), and its
// ancestors are mostly on the list themselves, which leaves room for open
// files and the server's own descriptors.
func maxHeldFor(nofile uint64) int {
	const least = 64
	if n := nofile / 4; n > least {
		return int(n)
	}
	return least
}

// used puts n first on the list (n was just used and holds, or just
// got, its union.Node) and lets the least recently used nodes go while
// the list is longer than max.
func (h *held) used(n *node) {
	if h == nil || h.max <= 0 || n.root {
		return
	}
	var drop []*union.Node
	var files []*union.File
	h.mu.Lock()
	if n.listed {
		h.remove(n)
	}
	h.pushFront(n)
	for h.count > h.max {
		v := h.tail
		h.remove(v)
		if un, f := v.letGo(); un != nil || f != nil {
			drop = append(drop, un)
			files = append(files, f)
		}
	}
	h.mu.Unlock()
	for i := range drop {
		if files[i] != nil {
			files[i].Close()
		}
		if drop[i] != nil {
			drop[i].Release()
		}
	}
}

// forget takes n off the list (the kernel forgot it).
func (h *held) forget(n *node) {
	if h == nil {
		return
	}
	h.mu.Lock()
	if n.listed {
		h.remove(n)
	}
	h.mu.Unlock()
}

// Len is how many nodes are on the held list, for tests.
func (h *held) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

func (h *held) pushFront(n *node) {
	n.prev, n.next = nil, h.head
	if h.head != nil {
		h.head.prev = n
	} else {
		h.tail = n
	}
	h.head = n
	n.listed = true
	h.count++
}

func (h *held) remove(n *node) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		h.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		h.tail = n.prev
	}
	n.prev, n.next, n.listed = nil, nil, false
	h.count--
}

// letGo takes n's union.Node and shared listing away from n, unless n
// must keep them (see the section comment), and returns them for the
// caller to release outside the locks. Called with held.mu held, n off
// the list.
func (n *node) letGo() (*union.Node, *union.File) {
	if _, p := n.Inode.Parent(); p == nil {
		return nil, nil // no name to find it again by
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.opens > 0 || n.forgotten {
		return nil, nil
	}
	un, f := n.un, n.shared
	n.un, n.shared = nil, nil
	return un, f
}

// pin returns n's union.Node with a reference for the caller, who
// releases it when done, finding the object again if n let go of it.
// ESTALE: the kernel forgot n, or its name is gone or names another
// object now.
func (n *node) pin() (*union.Node, syscall.Errno) {
	n.mu.Lock()
	un, gone := n.un, n.forgotten
	if un != nil {
		un.Retain()
	}
	n.mu.Unlock()
	switch {
	case un != nil:
		n.t.h.used(n)
		return un, 0
	case gone:
		return nil, syscall.ESTALE
	}
	return n.refind()
}

// refind looks n's object up again by its current name in its parent.
func (n *node) refind() (*union.Node, syscall.Errno) {
	name, p := n.Inode.Parent()
	if p == nil {
		return nil, syscall.ESTALE
	}
	pn, ok := p.Operations().(*node)
	if !ok {
		return nil, syscall.ESTALE
	}
	pun, errno := pn.pin()
	if errno != 0 {
		return nil, errno
	}
	c, err := pun.Lookup(name)
	pun.Release()
	switch {
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR):
		return nil, syscall.ESTALE
	case err != nil:
		return nil, errnoOf(err)
	case c.ID() != n.id:
		c.Release()
		return nil, syscall.ESTALE
	}
	n.mu.Lock()
	switch {
	case n.forgotten:
		n.mu.Unlock()
		c.Release()
		return nil, syscall.ESTALE
	case n.un != nil: // found again meanwhile by another request
		cur := n.un.Retain()
		n.mu.Unlock()
		c.Release()
		n.t.h.used(n)
		return cur, 0
	}
	n.un = c.Retain() // n's reference; c's first is the caller's
	n.mu.Unlock()
	n.t.h.used(n)
	return c, 0
}

// opened records an open handle of n, whose union.Node the caller has
// pinned as un: n holds un (again, if it let go meanwhile) until the
// handle is closed.
func (n *node) opened(un *union.Node) {
	n.mu.Lock()
	n.opens++
	if n.un == nil && !n.forgotten {
		n.un = un.Retain()
	}
	n.mu.Unlock()
}

// closed records that a handle of n was closed: with none left, n may
// let go again once it is idle.
func (n *node) closed() {
	n.mu.Lock()
	n.opens--
	idle := n.opens == 0 && n.un != nil
	n.mu.Unlock()
	if idle {
		n.t.h.used(n)
	}
}
