package virtfs

import (
	"fmt"
	"log"
	"os"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hanwen/go-fuse/v2/splice"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// maxWrite is the largest read or write request asked of the kernel
// (Linux allows 256 pages).
const maxWrite = 1 << 20

// Server serves one union on one FUSE connection.
type Server struct {
	srv    *fuse.Server
	budget *budget
}

// New prepares to serve u on a FUSE connection from Mount whose
// descriptor number in this process is fd (go-fuse is given /dev/fd/N).
// Everything the server opens by path is opened here (go-fuse's splice
// pipes empty themselves into /dev/null, opened on first use), so that a
// sandbox applied between New and Serve (Landlock to the layers) cannot
// make a later request fail. logger gets go-fuse's own messages.
func New(u *union.Union, fd int, logger *log.Logger) (*Server, error) {
	root, err := u.Root()
	if err != nil {
		return nil, fmt.Errorf("virtfs: root: %w", err)
	}
	a, err := root.Attr()
	if err != nil {
		root.Release()
		return nil, fmt.Errorf("virtfs: root: %w", err)
	}
	if p, err := splice.Get(); err == nil {
		if _, err := p.Write([]byte{0}); err == nil {
			splice.Done(p) // empties the pipe into /dev/null: opens it
		} else {
			splice.Drop(p)
		}
	}
	opts := nodeOptions(a.ID, logger)
	b := newBudget()
	// No node lets go of its union.Node (held of 0): the budget makes
	// the host kernel forget objects instead (budget.go).
	rootNode := newNode(&tree{u: u, b: b, h: newHeld(0)}, root)
	rootNode.root = true
	rawFS := fs.NewNodeFS(rootNode, opts)
	srv, err := fuse.NewServer(&noOpendir{rawFS}, fmt.Sprintf("/dev/fd/%d", fd), &opts.MountOptions)
	if err != nil {
		root.Release()
		return nil, fmt.Errorf("virtfs: serve /dev/fd/%d: %w", fd, err)
	}
	b.root = rootNode.EmbeddedInode()
	return &Server{srv: srv, budget: b}, nil
}

// Serve answers requests until the mount is gone (the last holder of
// the mount closed it) or the connection fails.
func (s *Server) Serve() {
	done := make(chan struct{})
	defer close(done)
	go s.budget.run(done)
	s.srv.Serve()
}

// nodeOptions are go-fuse's options for a union whose root has stable id
// rootID, on either frontend (a FUSE mount, or virtio-fs in protocol.go).
func nodeOptions(rootID uint64, logger *log.Logger) *fs.Options {
	ttl := CacheTTL
	opts := &fs.Options{
		EntryTimeout:    &ttl,
		AttrTimeout:     &ttl,
		NegativeTimeout: &ttl,
		RootStableAttr:  &fs.StableAttr{Mode: unix.S_IFDIR, Ino: rootID},
		Logger:          logger,
		MountOptions: fuse.MountOptions{
			FsName:               "union9p",
			Name:                 "union9p",
			MaxWrite:             maxWrite,
			MaxReadAhead:         maxWrite,
			MaxBackground:        64,
			EnableSymlinkCaching: true,
			// The kernel keeps a file's pages when its mtime changes:
			// every change of the data is a write through this mount,
			// which the kernel's page cache already holds.
			ExplicitDataCacheControl: true,
			Debug:                    os.Getenv("UNION9P_VIRTFS_DEBUG") != "",
			Logger:                   logger,
		},
	}
	return opts
}
