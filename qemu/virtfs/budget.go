package virtfs

import (
	"sync/atomic"

	"github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"
)

// budget bounds how many objects the kernel may keep known at once.
//
// The host kernel keeps every object QEMU has looked up (a READDIRPLUS
// of 20,000 entries is 20,000 objects) until memory pressure evicts it,
// and each one holds a union.Node with its O_PATH descriptors. Left
// alone, one big directory exhausts the server's descriptor limit
// (measured: the VM suite's 20k-entry directory, then EMFILE for every
// request). Past high known objects, a sweep asks the kernel to drop
// every cached entry of the mount (FUSE_NOTIFY_INVAL_ENTRY, from a
// goroutine of its own: never from a request's handler); the kernel then
// forgets the objects no one has open, and a later use of a name costs
// one LOOKUP again.
type budget struct {
	high  int64
	known atomic.Int64  // nodes the kernel knows (adopted, not yet forgotten)
	kick  chan struct{} // a sweep is wanted
	root  *fs.Inode
}

// testBudgetHigh replaces the budget's size in tests when set.
var testBudgetHigh int64

// newBudget sizes the budget from the descriptor limit: a known object
// holds one descriptor per layer it is in, at least one.
func newBudget() *budget {
	high := int64(1 << 16)
	if testBudgetHigh > 0 {
		return &budget{high: testBudgetHigh, kick: make(chan struct{}, 1)}
	}
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && lim.Cur > 0 && int64(lim.Cur)/4 < high {
		high = int64(lim.Cur) / 4
	}
	return &budget{high: high, kick: make(chan struct{}, 1)}
}

// adopted counts a new known object and asks for a sweep past high.
func (b *budget) adopted() {
	if b == nil {
		return
	}
	if b.known.Add(1) > b.high {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// forgotten counts an object the kernel forgot.
func (b *budget) forgotten() {
	if b != nil {
		b.known.Add(-1)
	}
}

// run sweeps whenever asked, until done closes.
func (b *budget) run(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-b.kick:
			b.sweep()
		}
	}
}

// sweep invalidates every entry under the root, deepest directories'
// entries included (breadth first: the list of directories is taken
// before their entries go).
func (b *budget) sweep() {
	type entry struct {
		dir  *fs.Inode
		name string
	}
	var entries []entry
	queue := []*fs.Inode{b.root}
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		for name, ch := range dir.Children() {
			entries = append(entries, entry{dir, name})
			if ch.IsDir() {
				queue = append(queue, ch)
			}
		}
	}
	// Leaves first: a directory's dentry goes after its children's.
	for i := len(entries) - 1; i >= 0; i-- {
		entries[i].dir.NotifyEntry(entries[i].name)
	}
}
