package p9srv

import (
	"sync"

	"github.com/union9p/union9p/union"
)

// names tracks the names that fids of one union currently stand on, so
// that a walk from a fid whose name was removed answers ENOENT and a
// Trename can find its directory's node. (The union itself keeps one
// shared node per object, which a rename moves for every fid at once.)
//
// It is not a cache: an entry exists only while some fid stands on it or
// below it, and is dropped with the last one, so memory is bounded by what
// clients hold, not by every name ever walked.
//
// Each entry keeps the nodes registered at it. A node registered by a fid
// stays registered after that fid is clunked while something below the
// entry is still held (a node lower in the tree may have it as its parent
// node, and a rename must reach it); it is released with the entry.
//
// Safe for concurrent use; mu is a leaf lock (only union Node methods
// that take the node's own lock are called under it).
type names struct {
	mu   sync.Mutex
	root *nameEntry
}

// nameEntry is one name with fids on or below it.
type nameEntry struct {
	parent   *nameEntry // nil for the root
	name     string
	children map[string]*nameEntry // entries still reachable by name
	// nodes registered here, each with a reference owned by names, and
	// how many fids hold each (0: kept for entries below).
	nodes map[*union.Node]int32
	fids  int32
	gone  bool // unlinked or renamed over: no longer reachable by name
}

func newNames() *names { return &names{root: &nameEntry{nodes: map[*union.Node]int32{}}} }

// enterRoot registers n (an attach's root node) at the root entry.
func (t *names) enterRoot(n *union.Node) *nameEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.addLocked(t.root, n, 1)
	return t.root
}

// enter registers node n, found as name in the directory of entry parent,
// for one fid (fid true) or as a node between two walked names, kept only
// while a fid stands below it (fid false). It returns n's entry.
func (t *names) enter(parent *nameEntry, name string, n *union.Node, fid bool) *nameEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := parent.children[name]
	if e == nil {
		e = &nameEntry{parent: parent, name: name, nodes: make(map[*union.Node]int32, 1)}
		if parent.children == nil {
			parent.children = make(map[string]*nameEntry)
		}
		parent.children[name] = e
	}
	var holds int32
	if fid {
		holds = 1
	}
	t.addLocked(e, n, holds)
	return e
}

// again registers n once more at e for another fid (a clone).
func (t *names) again(e *nameEntry, n *union.Node) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.addLocked(e, n, 1)
}

func (t *names) addLocked(e *nameEntry, n *union.Node, holds int32) {
	if c, ok := e.nodes[n]; ok {
		e.nodes[n] = c + holds
	} else {
		e.nodes[n] = holds
		n.Retain()
	}
	e.fids += holds
}

// leave drops one fid's registration of n at e.
func (t *names) leave(e *nameEntry, n *union.Node) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := e.nodes[n]; ok && c > 0 {
		e.nodes[n] = c - 1
		e.fids--
	}
	t.pruneLocked(e)
}

// pruneLocked releases what e keeps for nobody and drops e, and then its
// parents, once nothing stands on or below them.
func (t *names) pruneLocked(e *nameEntry) {
	for e != nil && e != t.root {
		if len(e.children) > 0 {
			return
		}
		for n, c := range e.nodes {
			if c == 0 {
				delete(e.nodes, n)
				n.Release()
			}
		}
		if e.fids > 0 {
			return
		}
		p := e.parent
		if !e.gone && p.children[e.name] == e {
			delete(p.children, e.name)
			if len(p.children) == 0 {
				p.children = nil
			}
		}
		e.gone = true
		if p == nil {
			return
		}
		e = p
	}
	if e == t.root && len(e.children) == 0 {
		for n, c := range e.nodes {
			if c == 0 {
				delete(e.nodes, n)
				n.Release()
			}
		}
	}
}

// prune drops e and its parents if nothing stands on or below them.
func (t *names) prune(e *nameEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pruneLocked(e)
}

// isGone reports whether e's name was removed.
func (t *names) isGone(e *nameEntry) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return e.gone
}

// removed notes that name in parent no longer names the object fids there
// stand on (unlink, or the target of a rename).
func (t *names) removed(parent *nameEntry, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.detachLocked(parent, name)
}

func (t *names) detachLocked(parent *nameEntry, name string) {
	e := parent.children[name]
	if e == nil {
		return
	}
	delete(parent.children, name)
	if len(parent.children) == 0 {
		parent.children = nil
	}
	e.gone = true
	t.pruneLocked(e)
	t.pruneLocked(parent)
}

// renamed moves oldName in oldDir to newName in newDir, after the union
// renamed it (the union moves its node itself: every fid on it shares it).
func (t *names) renamed(oldDir *nameEntry, oldName string, newDir *nameEntry, newName string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if oldDir == newDir && oldName == newName {
		return
	}
	e := oldDir.children[oldName]
	if newDir.children[newName] != nil {
		t.detachLocked(newDir, newName)
	}
	if e == nil {
		return
	}
	delete(oldDir.children, oldName)
	if newDir.children == nil {
		newDir.children = make(map[string]*nameEntry)
	}
	newDir.children[newName] = e
	e.parent, e.name = newDir, newName
	if len(oldDir.children) == 0 {
		oldDir.children = nil
	}
	t.pruneLocked(oldDir)
}

// anyNode returns a node registered at e (a directory's, for a Trename
// that names only the fid to move), with a new reference, or nil.
func (t *names) anyNode(e *nameEntry) *union.Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	for n := range e.nodes {
		return n.Retain()
	}
	return nil
}
