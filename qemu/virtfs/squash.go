package virtfs

import (
	"context"

	"github.com/union9p/union9p/union"
)

// ownerFor is who owns a new object n makes for the caller of ctx
// (ownerIn, then squashed: the tree's union.Squash).
func (n *node) ownerFor(ctx context.Context, dir *union.Node) (union.Owner, bool) {
	o, setgid := ownerIn(ctx, dir)
	return n.t.squash.Owner(o), setgid
}
