// Package union merges read-only lower directories under one writable upper
// directory with the semantics of Linux overlayfs. It knows nothing about
// 9P: p9srv serves what this package decides.
//
// # Concepts
//
// Layer: a host directory held open as a file descriptor. The upper layer is
// writable; lower layers (topmost first, as overlayfs's lowerdir=top:bottom)
// are only ever read, and the type that represents them (lowerLayer) has no
// method that writes. Every host call is made relative to a descriptor the
// union already holds, one name component at a time, with O_NOFOLLOW or
// AT_SYMLINK_NOFOLLOW: a symbolic link inside a layer is data for the client,
// never a path for the server.
//
// Lookup: a name is looked up in the upper layer, then in each lower layer
// top-down. The first layer that has it wins, unless it is a directory: then
// the directories of the same name in lower layers are merged into it, until
// a layer's directory is opaque or a non-directory is met.
//
// Whiteout: a marker in a higher layer that says "this name was deleted";
// it hides the name in every layer below. Opaque directory: a directory
// marked so that nothing below it is merged (a directory re-created where a
// deleted one was is opaque). The markers' formats are in package whiteout.
//
// Copy-up: before the first change to an object that lives only in a lower
// layer (open for write, truncate, chmod, chown, utimes, xattr change, link,
// rename), the object is copied to the upper layer together with its parent
// directories: data with holes kept (reflink or copy_file_range first), mode,
// owner, times with nanoseconds, and xattrs (not the private ones). The copy
// is built in the work directory, on the upper layer's filesystem (a regular
// file as an unnamed O_TMPFILE), and linked or renamed into place, so that a
// crash leaves either nothing or a complete copy.
// Concurrent first writes to one object copy it once; copy-ups of different
// objects run in parallel.
//
// Redirect: a directory that has lower parts is renamed by storing, on its
// upper copy, where those parts are: the xattr "overlay.redirect" holds the
// old name (a rename within one directory) or the path from the layer
// roots (a move to another directory), in overlayfs's format. Lookups
// follow redirects wherever they meet them, in the upper layer or in a
// lower one (an upper of an earlier union used as a lower), including those
// the kernel's overlayfs wrote; a redirect can only lead into the layers
// below the one that holds it, one component at a time (redirect.go).
// Options.RedirectDir says whether renames write redirects (RedirectOn)
// or fail with EXDEV so that userspace (mv) copies (RedirectOff, the zero
// value, as overlayfs's redirect_dir=off); redirects are followed either
// way, as overlayfs does by default.
//
// Metacopy: with Options.Metacopy (overlayfs's metacopy=on), a change that
// keeps a lower regular file's data (owner, mode, times, xattrs, rename,
// link) copies only its metadata; the upper file carries
// "overlay.metacopy" and its data is read from the lower layer (through a
// redirect once renamed or linked) until the first open for writing or
// truncate copies it in (metacopy.go).
//
// Deep stacks: lower layers never change, so what a lower directory holds
// is read once and kept; a lookup asks the host only in the layers whose
// directory has the name (lowercache.go).
//
// Shared lowers: the lower layers and what is cached about them are a
// LowerSet (lowerset.go). A union opened alone has its own; a server with
// many unions over one base (tenants) opens one with OpenLowers and gives
// it to each (Options.LowerSet), so the base is cached once.
//
// Quota: with Options.Quota, every change of the upper layer is charged
// (bytes of apparent size, inodes) before it is made, and refused with
// EDQUOT, having made nothing, past the limit (quota.go).
//
// Stable id: every object has a 64-bit id, unique across layers, that stays
// the same when the object is copied up. It is built from the object's
// filesystem (a small index per st_dev) and inode number; a copied-up object
// records the id of its origin in the private xattr "overlay.union9p.id", so
// that the kernel's overlayfs ignores and hides it.
//
// # Nodes and concurrency
//
// A Node is one name in the merged tree, as found by a lookup: it holds
// O_PATH descriptors of its objects in each layer. The union keeps one
// Node per object that callers hold, shared by all of them (nodetable.go,
// as overlayfs's ovl_inode): Lookup and Root hand out references to it,
// Release drops them, and the last one closes its descriptors. A copy-up,
// rename or xattr change made through any holder is therefore seen by
// every holder at once. A Node whose name was removed keeps working on
// what it holds, like an open file, and the name's next lookup makes a new
// Node for whatever is there then.
//
// All Node methods are safe for concurrent use. Namespace changes (Create,
// Mkdir, Symlink, Mknod, Link, Unlink, Rename) check the names and change
// the upper layer under one union-wide lock (Union.nsMu), so that a check
// and the change it allows are never separated by another change;
// copy-ups, which may take long, happen before that lock is taken and
// serialize themselves per object (copyUpLocks, by stable id), and only
// their final rename takes it. Locks, outermost first: an object's
// copy-up lock, nsMu, the node table's lock, one Node's mu (its
// descriptors and metacopy state; never held across a long host call,
// nor while another Node's mu is taken).
//
// Errors returned by this package are syscall.Errno values (unix.Errno),
// possibly wrapped with the operation and name; errors.As finds the errno.
package union
