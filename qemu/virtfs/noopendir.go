package virtfs

import (
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// noOpendir answers the kernel's first OPENDIR with ENOSYS, after which
// Linux (5.1 and later) opens directories without asking and sends
// READDIR with no handle. QEMU's 9p server opens the parent directory
// of a path for nearly every request (an lstat is an openat of the
// parent, then fstatat in it): measured over one bench-guest run, 9,485
// OPENDIR and as many RELEASEDIR round trips against 1,500 for
// everything else. Each READDIR(PLUS) here opens a handle of go-fuse's
// bridge for the call, seeks to the kernel's offset and releases it.
//
// The offsets are cookies of the union's listing (package union):
// positions in a listing taken when a directory is read from its start.
// So that they keep meaning the same entries while the directory
// changes, all these calls read one listing per directory (node.shared),
// taken again only by a read from offset 0, as one open directory
// would. Two processes listing one directory at once from different
// offsets while it changes may see an entry twice or miss one (a
// directory read is not atomic on any filesystem; here the window is
// the time between their two reads from offset 0).
// sharedListing, in the flags of an OPENDIR made by noOpendir, asks
// for a handle on the directory's shared listing (no such flag exists
// in open(2)'s; the kernel's OPENDIRs never carry it).
const sharedListing = 1 << 31

type noOpendir struct {
	fuse.RawFileSystem
}

func (r *noOpendir) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return fuse.ENOSYS
}

func (r *noOpendir) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return r.withHandle(cancel, in, func() fuse.Status { return r.RawFileSystem.ReadDir(cancel, in, out) })
}

func (r *noOpendir) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return r.withHandle(cancel, in, func() fuse.Status { return r.RawFileSystem.ReadDirPlus(cancel, in, out) })
}

// withHandle runs read with in.Fh set to a directory handle of its own.
func (r *noOpendir) withHandle(cancel <-chan struct{}, in *fuse.ReadIn, read func() fuse.Status) fuse.Status {
	if in.Fh != 0 {
		return read() // opened before OPENDIR was refused
	}
	var out fuse.OpenOut
	if st := r.RawFileSystem.OpenDir(cancel, &fuse.OpenIn{InHeader: in.InHeader, Flags: unix.O_RDONLY | sharedListing}, &out); !st.Ok() {
		return st
	}
	in.Fh = out.Fh
	defer r.RawFileSystem.ReleaseDir(&fuse.ReleaseIn{InHeader: in.InHeader, Fh: out.Fh})
	return read()
}

func (r *noOpendir) ReleaseDir(in *fuse.ReleaseIn) {
	if in.Fh != 0 {
		r.RawFileSystem.ReleaseDir(in)
	}
}

// FsyncDir has nothing to flush: the union's directory changes are made
// by the host calls that answer each request.
func (r *noOpendir) FsyncDir(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status { return fuse.OK }
