package union

import "sync"

// One Node per object. The union keeps, for every merged object some
// caller holds, exactly one Node, as overlayfs keeps one ovl_inode and
// lisafs one Node: Lookup, Root and the create calls hand out references
// to it. A copy-up, a rename or an xattr change made through one holder
// changes that Node, so every other holder (every 9P fid, on any
// connection) sees it at once; nothing has to remember to look again.
//
// The table is keyed by the stable id (ident.go). Several names may carry
// one id: hard links, in a lower layer or in the upper one. overlayfs
// copies each name of a lower hard link up on its own (without its
// index), so a Node is one name of an object: the table holds, per id, one
// Node per (parent Node, name). Nearly always that is one Node.
// The table also knows each Node by that place, (parent, name), so that a
// lookup of a name whose Node is held answers it after one lstat
// (lookup.go: stillAt).
//
// A Node is in the table while it is referenced and its name still names
// its object. It leaves it when its last reference is dropped (so memory
// is bounded by what callers hold, not by the names ever walked) or when
// its name is removed (unlink, rmdir, replaced by a rename): a holder of
// a removed Node keeps working on what it holds, like an open file, and
// the next lookup of the name makes a new Node for whatever is there now.
//
// Locking: nodeTable.mu guards the table, and the parent and name of every
// Node in it (a rename changes them under both nodeTable.mu and the
// Node's mu, so holding either is enough to read them). Lock order:
// nodeTable.mu, then a Node's mu; never the reverse, and no host call is
// made under nodeTable.mu. A Node's reference count is atomic: it only
// goes up from a count above zero (a holder's Retain, or the table's
// lookup under mu), so a Node whose count reached zero is never handed
// out again; its last Release takes it out of the table.
type nodeTable struct {
	mu   sync.Mutex
	byID map[uint64][]*Node
	// byName: the Node in the table at each (parent, name), for a
	// lookup of a name whose object is held (held). Where the host
	// changed behind the union and two Nodes share a place, the one
	// entered last.
	byName map[nameKey]*Node
	count  int // Nodes in the table, for tests and figures
}

// nameKey is a Node's place: its parent Node and its name there.
type nameKey struct {
	parent *Node
	name   string
}

// intern returns the Node of the object c describes: an existing one
// (with a new reference) if the table has a live Node with c's id, parent
// and name, else c itself, entered in the table. c must not be shared
// yet; when an existing Node is returned, the caller disposes of c.
func (t *nodeTable) intern(c *Node) *Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.byID[c.id]
	for i, n := range list {
		if n.parent != c.parent || n.name != c.name {
			continue
		}
		if n.tryRetain() {
			return n
		}
		// n is being released: c takes its place.
		list[i] = c
		c.hashed = true
		t.byName[nameKey{c.parent, c.name}] = c
		return c
	}
	if t.byID == nil {
		t.byID = make(map[uint64][]*Node)
		t.byName = make(map[nameKey]*Node)
	}
	t.byID[c.id] = append(list, c)
	t.byName[nameKey{c.parent, c.name}] = c
	t.count++
	c.hashed = true
	return c
}

// held returns a new reference to the Node in the table at name in
// parent, or nil if there is none (or it is being released).
func (t *nodeTable) held(parent *Node, name string) *Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := t.byName[nameKey{parent, name}]; n != nil && n.tryRetain() {
		return n
	}
	return nil
}

// share is intern for a Node just made with one reference: when the
// object's Node is already held, c is released and that one returned.
func (t *nodeTable) share(c *Node) *Node {
	if s := t.intern(c); s != c {
		c.Release()
		return s
	}
	return c
}

// removeLocked takes n out of the table, if it is there. Call with t.mu held.
func (t *nodeTable) removeLocked(n *Node) {
	if !n.hashed {
		return
	}
	n.hashed = false
	if k := (nameKey{n.parent, n.name}); t.byName[k] == n {
		delete(t.byName, k)
	}
	list := t.byID[n.id]
	for i, m := range list {
		if m == n {
			list = append(list[:i], list[i+1:]...)
			t.count--
			break
		}
	}
	if len(list) == 0 {
		delete(t.byID, n.id)
	} else {
		t.byID[n.id] = list
	}
}

// unhash takes n out of the table: its name no longer names its object.
func (t *nodeTable) unhash(n *Node) {
	t.mu.Lock()
	t.removeLocked(n)
	t.mu.Unlock()
}

// move gives n its new place after a rename, under the table's lock so
// that lookups match it by its new name only.
func (t *nodeTable) move(n, newParent *Node, newName string) {
	np := newParent.Retain()
	t.mu.Lock()
	n.mu.Lock()
	old := n.parent
	if k := (nameKey{old, n.name}); n.hashed && t.byName[k] == n {
		delete(t.byName, k)
	}
	n.parent, n.name = np, newName
	if n.hashed {
		t.byName[nameKey{np, newName}] = n
	}
	n.mu.Unlock()
	t.mu.Unlock()
	if old != nil {
		old.Release()
	}
}

// Live returns how many Nodes the union holds, for tests and memory
// figures: it is the number of objects callers hold references to (and
// their ancestors), not the number of names ever looked up.
func (u *Union) Live() int {
	u.nodes.mu.Lock()
	defer u.nodes.mu.Unlock()
	return u.nodes.count
}

// tryRetain adds a reference unless n's count already reached zero.
func (n *Node) tryRetain() bool {
	for {
		r := n.refs.Load()
		if r <= 0 {
			return false
		}
		if n.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}
