package virtfs

import (
	"fmt"
	"log"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// maxWrite is the largest read or write request asked of the kernel
// (Linux allows 256 pages).
const maxWrite = 1 << 20

// Serve serves u on dev, a FUSE connection from Mount whose descriptor
// number in this process is fd (go-fuse is given /dev/fd/N). It returns
// when the mount is gone (the last holder of the mount closed it) or the
// connection fails. logger gets go-fuse's own messages.
func Serve(u *union.Union, fd int, logger *log.Logger) error {
	root, err := u.Root()
	if err != nil {
		return fmt.Errorf("virtfs: root: %w", err)
	}
	a, err := root.Attr()
	if err != nil {
		root.Release()
		return fmt.Errorf("virtfs: root: %w", err)
	}
	ttl := CacheTTL
	opts := &fs.Options{
		EntryTimeout:    &ttl,
		AttrTimeout:     &ttl,
		NegativeTimeout: &ttl,
		RootStableAttr:  &fs.StableAttr{Mode: unix.S_IFDIR, Ino: a.ID},
		Logger:          logger,
		MountOptions: fuse.MountOptions{
			FsName:               "union9p",
			Name:                 "union9p",
			MaxWrite:             maxWrite,
			MaxReadAhead:         maxWrite,
			MaxBackground:        64,
			EnableSymlinkCaching: true,
			Logger:               logger,
		},
	}
	rawFS := fs.NewNodeFS(newNode(u, root), opts)
	srv, err := fuse.NewServer(rawFS, fmt.Sprintf("/dev/fd/%d", fd), &opts.MountOptions)
	if err != nil {
		return fmt.Errorf("virtfs: serve /dev/fd/%d: %w", fd, err)
	}
	srv.Serve()
	return nil
}
