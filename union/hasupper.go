package union

// HasUpper reports whether n has an object in the upper layer now, so that
// a change to n (or, for a directory, a new name in it) needs no copy-up.
// The answer can only change from false to true (a copy-up) or with n
// leaving the union, so true stays true while the caller holds n.
func (n *Node) HasUpper() bool { return n.upperFd() >= 0 }
