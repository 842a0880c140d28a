package virtfs

import (
	"errors"

	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// With the kernel's writeback cache (FUSE_WRITEBACK_CACHE, negotiated by
// the virtiofs frontend, protocol.go) the guest's page cache holds
// written data and sends it later, in pages:
//   - it may READ a page of a file the process opened write-only (to
//     fill a partial page), so such files are opened read-write here
//     when the server may;
//   - it places appended data itself (it knows the size), so O_APPEND is
//     not passed on: the host would put every WRITE at the end,
//     whatever offset the kernel chose.

// openAdjusted opens un with flags, adjusted for the writeback cache on
// trees that use it.
func (n *node) openAdjusted(un *union.Node, flags int) (*union.File, error) {
	if !n.wb {
		return un.Open(flags)
	}
	wflags := flags &^ unix.O_APPEND
	if wflags&unix.O_ACCMODE == unix.O_WRONLY {
		f, err := un.Open(wflags&^unix.O_ACCMODE | unix.O_RDWR)
		if !errors.Is(err, unix.EACCES) {
			return f, err
		}
		// Not readable by the server: the kernel's page reads of this
		// open fail, its writes work.
	}
	return un.Open(wflags)
}

// createFlags are the flags a create opens with on this tree (the new
// file is the server's to read: read-write).
func (n *node) createFlags(flags int) int {
	if !n.wb {
		return flags
	}
	flags &^= unix.O_APPEND
	if flags&unix.O_ACCMODE == unix.O_WRONLY {
		flags = flags&^unix.O_ACCMODE | unix.O_RDWR
	}
	return flags
}
