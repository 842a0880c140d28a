package p9srv

import "golang.org/x/sys/unix"

// Open flags as they travel in Tlopen and Tlcreate (P9_DOTL_* in Linux's
// include/net/9p/9p.h). They equal the x86 O_* values, not necessarily the
// host's, so they are translated one by one.
const (
	dotlAccessMask = 0o3
	dotlTrunc      = 0o1000
	dotlAppend     = 0o2000
	dotlDsync      = 0o10000
	dotlDirect     = 0o40000
	dotlDirectory  = 0o200000
	dotlNoatime    = 0o1000000
	dotlSync       = 0o4000000
)

// hostOpenFlags returns the host open(2) flags for a client's open flags.
//
// Kept: the access mode, O_TRUNC, O_APPEND (pwrite on an O_APPEND file
// appends, so concurrent appenders from several clients stay atomic),
// O_SYNC/O_DSYNC, O_NOATIME (a hint; union drops it where the host refuses)
// and O_DIRECTORY.
//
// Dropped: O_DIRECT, because it is about the client's page cache, which
// v9fs bypasses by itself, while on the host it would demand aligned
// buffers the server does not have; O_CREAT/O_EXCL (Tlopen never creates,
// Tlcreate always creates exclusively); O_NONBLOCK, O_NOCTTY, O_NOFOLLOW,
// O_CLOEXEC, FASYNC and O_LARGEFILE, which mean nothing for the server's
// own descriptors (only regular files and directories are opened, never
// followed).
func hostOpenFlags(v uint32) int {
	flags := int(v & dotlAccessMask)
	for _, m := range []struct {
		dotl uint32
		host int
	}{
		{dotlTrunc, unix.O_TRUNC},
		{dotlAppend, unix.O_APPEND},
		{dotlDsync, unix.O_DSYNC},
		{dotlSync, unix.O_SYNC},
		{dotlNoatime, unix.O_NOATIME},
		{dotlDirectory, unix.O_DIRECTORY},
	} {
		if v&m.dotl != 0 {
			flags |= m.host
		}
	}
	// O_SYNC includes the O_DSYNC bit on Linux; dotlSync alone maps to it.
	return flags
}
