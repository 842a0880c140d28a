// Package virtfs is union9p's FUSE frontend for QEMU guests: it serves a
// union (package union) as a FUSE filesystem on the host, and QEMU's own
// 9p server (-virtfs local) exports that filesystem to the guest over
// virtio-9p. The guest then pays what virtio-9p costs (zero-copy rings,
// one interrupt a request), and the host a FUSE round trip only for
// what its kernel cannot cache.
//
// # The mount is private to one QEMU
//
// Mount makes the FUSE filesystem with the kernel's new mount API
// (fsopen, fsconfig, fsmount) as a detached mount: it is in no mount
// namespace and has no path, so no other process of the host can reach
// it by name. Its only handle is a descriptor, given to QEMU (which
// exports /proc/self/fd/N); when the last copy of that descriptor is
// closed (QEMU exits, whatever the reason), the kernel unmounts it, the
// FUSE connection ends and Serve returns. The mount has no allow_other:
// only processes of the mounting user (QEMU runs as that user) may use
// it, and it is nosuid, nodev, noexec.
//
// # Caching
//
// The lowers never change and the union is the only writer of the upper
// (union.Open locks the upper and work directories against a second
// server), so every change the host kernel could miss is one made
// through this mount: entries, attributes and data are cached for
// CacheTTL, and files keep their page cache across opens
// (FOPEN_KEEP_CACHE) and across their own writes (no invalidation when
// the mtime moves: ExplicitDataCacheControl), so a file just written is
// read back from the host's page cache, as from a disk filesystem.
// Writes go through to the union (no writeback cache), so a guest's
// fsync reaches the upper's disk.
// Over virtio-fs (protocol.go), write-only opens are direct I/O, and the
// open after such a write drops the guest's pages (directio.go).
//
// # Debugging
//
// UNION9P_VIRTFS_DEBUG=1 in the server's environment logs every FUSE
// request and reply (go-fuse's debug output) through the server's
// logger: the way to count what QEMU's 9p server asks of the union.
//
// # Concurrency
//
// go-fuse calls the methods of node and of the handles from many
// goroutines at once; every union method they call is safe for
// concurrent use. Each request pins its node's union.Node (a reference
// of its own, hold.go), so the node may replace it (the union handed out
// a new Node for the same id) or let go of it while idle (over
// virtio-fs: hold.go) without closing descriptors in use; a handle's
// state (the directory cursor) is guarded by go-fuse, which serializes
// the reads of one directory handle.
package virtfs
