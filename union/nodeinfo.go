package union

// What a server may ask of a Node without a host call. Safe for concurrent
// use; the caller holds a reference to n.

// HasUpper reports whether n has an object in the upper layer now, so that
// a change to n (or, for a directory, a new name in it) needs no copy-up.
// The answer can only change from false to true (a copy-up) or with n
// leaving the union, so true stays true while the caller holds n.
func (n *Node) HasUpper() bool { return n.upperFd() >= 0 }

// ID returns n's stable id (the Attr.ID of every Attr of n).
func (n *Node) ID() uint64 { return n.id }

// Type returns n's S_IFMT bits, which never change for a Node.
func (n *Node) Type() uint32 { return n.typ }
