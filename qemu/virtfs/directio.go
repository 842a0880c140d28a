package virtfs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// # Direct I/O for write-only opens (virtio-fs only)
//
// A guest's buffered write goes through its page cache page by page, and
// under software emulation (TCG) that per-page work is most of what a
// bulk write costs (one guest: 32 MiB in 0.8-1.1 s buffered, 0.07 s
// with O_DIRECT). QEMU's virtio-9p with cache=mmap skips the page cache
// for read and write, which is why it led on dd. So over virtio-fs an
// open for writing only is answered FOPEN_DIRECT_IO: each write(2) goes
// to the union in one request, straight from the caller's buffer.
//
// Only write-only opens: a write-only descriptor can never be mmapped,
// while a direct-io open that is mmapped MAP_SHARED fails with ENODEV on
// the guest's Linux 6.1 (6.6 has FUSE_DIRECT_IO_ALLOW_MMAP for that), so
// reads, and read-write opens, keep the page cache. Where the guest
// accepted FUSE_DIRECT_IO_ALLOW_MMAP (6.6+), every open is direct
// instead: see directmmap.go for that rule and its coherence.
//
// Coherence. Linux 6.1's direct write does not drop other opens' cached
// pages of the inode, so after a direct write the next open of the file
// is answered without FOPEN_KEEP_CACHE, which makes the guest drop the
// inode's pages on that open: close-to-open consistency, as NFS gives.
// A descriptor opened before the write keeps whatever pages it had read
// until it is reopened. Size and mtime need nothing here: the guest's
// direct write extends i_size itself and invalidates its cached
// attributes, so the next stat asks the union.
//
// Not on the host FUSE mount behind virtio-9p (Mount): QEMU's 9p server
// does its own writes there, in msize pieces, and has no use for it.

// openFlags is the FOPEN_ answer for an open of n (a regular file: the
// only kind FUSE opens) with open(2) flags flags, and whether that open
// is direct (its writes must then call n.wroteDirect). Safe for
// concurrent use.
func (n *node) openFlags(flags uint32) (fopen uint32, direct bool) {
	fopen = fuse.FOPEN_KEEP_CACHE
	// Swap, not Load: an open that saw the mark drops the guest's pages,
	// and a direct write that ends after this swap marks the node again,
	// so pages read after this open cannot outlive the next one.
	if n.staleCache.Swap(false) {
		fopen = 0
	}
	if n.t.writeDirect && (flags&syscall.O_ACCMODE == syscall.O_WRONLY || n.t.readDirect.Load()) {
		fopen |= fuse.FOPEN_DIRECT_IO
		direct = true
	}
	return fopen, direct
}

// wroteDirect records that the host file changed behind the guest's page
// cache. Called after the write is done (see openFlags).
func (n *node) wroteDirect() { n.staleCache.Store(true) }
