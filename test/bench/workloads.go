package main

import (
	"fmt"

	"github.com/union9p/union9p/test/p9wire"
)

// unit is what a workload counts.
type unit int

const (
	unitOps   unit = iota // completed operations
	unitBytes             // data bytes moved
)

// workload is one kind of client activity, issued as the Linux v9fs client
// issues it, and measured as units completed per second.
type workload struct {
	Key      string // short name: go test sub-benchmark, -workloads flag
	Name     string
	Unit     unit
	Msize    uint32 // asked for; the server may grant less
	Metadata bool   // part of the "3 lowers vs single directory" set
	Cost     int    // relative cost of one op, to scale fixed op counts (0 = 1)
	// Setup prepares a session (not timed) and returns the operation to
	// repeat and what undoes the setup. tag is unique per session and
	// round, for names the workload creates.
	Setup func(s *session, tag string) (op func() (int64, error), teardown func() error, err error)
}

// Message sizes: the kernel's default for trans=fd and virtio is 128 KiB
// since Linux 5.19 (metadata workloads); sequential I/O is measured at
// 64 KiB and 1 MiB.
const (
	metaMsize  = 128 << 10
	smallMsize = 64 << 10
	largeMsize = 1 << 20
)

// workloads returns the measured set, in report order.
func workloads() []workload {
	return []workload{
		{Key: "null", Name: "null request (Tstatfs)", Unit: unitOps, Msize: metaMsize, Setup: setupStatfs},
		{Key: "lookup", Name: "walk+getattr+clunk (lower file)", Unit: unitOps, Msize: metaMsize, Metadata: true, Setup: setupLookup},
		{Key: "create", Name: "create+write 4K+clunk", Unit: unitOps, Msize: metaMsize, Metadata: true, Setup: setupCreate},
		{Key: "readdir10k", Name: "readdir 10k merged (whole dir)", Unit: unitOps, Msize: metaMsize, Metadata: true, Cost: 50, Setup: setupReaddir},
		{Key: "seqread64k", Name: "seq read, msize 64K", Unit: unitBytes, Msize: smallMsize, Setup: setupSeqRead},
		{Key: "seqread1m", Name: "seq read, msize 1M", Unit: unitBytes, Msize: largeMsize, Setup: setupSeqRead},
		{Key: "seqwrite64k", Name: "seq write, msize 64K", Unit: unitBytes, Msize: smallMsize, Setup: setupSeqWrite},
		{Key: "seqwrite1m", Name: "seq write, msize 1M", Unit: unitBytes, Msize: largeMsize, Setup: setupSeqWrite},
	}
}

func noTeardown() error { return nil }

// setupStatfs: Tstatfs on the root, the cheapest request with a body that
// every server answers from a host syscall (statfs(2)).
func setupStatfs(s *session, _ string) (func() (int64, error), func() error, error) {
	return func() (int64, error) {
		_, err := s.c.Statfs(rootFid)
		return 1, err
	}, noTeardown, nil
}

// setupLookup: what stat(2) of an uncached path component costs, as v9fs
// does it: Twalk of one name from the parent's fid to a new fid, Tgetattr
// with the basic mask, and (when the dentry is dropped) Tclunk. The files
// are spread over the lower layers.
func setupLookup(s *session, _ string) (func() (int64, error), func() error, error) {
	dir, err := s.walk(rootFid, "files")
	if err != nil {
		return nil, nil, err
	}
	i := 0
	op := func() (int64, error) {
		f := s.fid()
		if _, err := s.c.Walk(dir, f, fileName(i%lowerFiles)); err != nil {
			return 0, err
		}
		i++
		if _, err := s.c.Getattr(f, p9wire.GetattrBasic); err != nil {
			return 0, err
		}
		return 1, s.c.Clunk(f)
	}
	return op, func() error { return s.c.Clunk(dir) }, nil
}

// setupCreate: open(O_CREAT|O_WRONLY|O_TRUNC, 0644) + write(4 KiB) +
// close, as v9fs_vfs_atomic_open_dotl does it: clone the directory fid,
// Tlcreate on the clone, Twalk to the new name and Tgetattr for the inode,
// Twrite, then Tclunk of both fids. new/ is a merged directory.
func setupCreate(s *session, tag string) (func() (int64, error), func() error, error) {
	dir, err := s.walk(rootFid, "new")
	if err != nil {
		return nil, nil, err
	}
	data := make([]byte, 4096)
	i := 0
	op := func() (int64, error) {
		name := fmt.Sprintf("c-%s-%d", tag, i)
		i++
		f := s.fid()
		if _, err := s.c.Walk(dir, f); err != nil {
			return 0, err
		}
		if _, _, err := s.c.Lcreate(f, name, p9wire.OWronly|p9wire.OCreate|p9wire.OTrunc, 0o100644, 0); err != nil {
			return 0, err
		}
		ino := s.fid()
		if _, err := s.c.Walk(dir, ino, name); err != nil {
			return 0, err
		}
		if _, err := s.c.Getattr(ino, p9wire.GetattrBasic); err != nil {
			return 0, err
		}
		if _, err := s.c.Write(f, 0, data); err != nil {
			return 0, err
		}
		if err := s.c.Clunk(f); err != nil {
			return 0, err
		}
		return 1, s.c.Clunk(ino)
	}
	return op, func() error { return s.c.Clunk(dir) }, nil
}

// setupReaddir: one op lists dir10k/ completely, as getdents(2) on v9fs
// does: clone, Tlopen(O_RDONLY|O_DIRECTORY), Treaddir with count
// msize-24 from the offset of the last entry until an empty answer,
// Tclunk. The listing must have every merged name.
func setupReaddir(s *session, _ string) (func() (int64, error), func() error, error) {
	dir, err := s.walk(rootFid, "dir10k")
	if err != nil {
		return nil, nil, err
	}
	op := func() (int64, error) {
		n, err := listDir(s, dir)
		if err != nil {
			return 0, err
		}
		if n != bigDirEntries+2 {
			return 0, fmt.Errorf("readdir of dir10k: %d entries, want %d", n, bigDirEntries+2)
		}
		return 1, nil
	}
	return op, func() error { return s.c.Clunk(dir) }, nil
}

// listDir reads a whole directory through a clone of dir and returns the
// number of entries, "." and ".." included.
func listDir(s *session, dir uint32) (int, error) {
	f := s.fid()
	if _, err := s.c.Walk(dir, f); err != nil {
		return 0, err
	}
	defer s.c.Clunk(f)
	if _, _, err := s.c.Lopen(f, p9wire.ORdonly|p9wire.ODirectory); err != nil {
		return 0, err
	}
	n := 0
	var off uint64
	for {
		got, last, err := s.c.ReaddirCount(f, off, s.chunk())
		if err != nil {
			return n, err
		}
		if got == 0 {
			return n, nil
		}
		n += got
		off = last
	}
}

// setupSeqRead: read(2) of a large cached file in msize-24 chunks, one
// Tread at a time per connection, wrapping around at the end.
func setupSeqRead(s *session, _ string) (func() (int64, error), func() error, error) {
	f, err := s.walk(rootFid, "seq", "data")
	if err != nil {
		return nil, nil, err
	}
	if _, _, err := s.c.Lopen(f, p9wire.ORdonly); err != nil {
		s.c.Clunk(f)
		return nil, nil, err
	}
	var off uint64
	buf := make([]byte, s.chunk())
	op := func() (int64, error) {
		n, err := s.c.ReadInto(f, off, buf)
		if err != nil {
			return 0, err
		}
		off += uint64(n)
		if n == 0 || off >= seqFileSize {
			off = 0
		}
		return int64(n), nil
	}
	return op, func() error { return s.c.Clunk(f) }, nil
}

// setupSeqWrite: write(2) to a new file in msize-24 chunks, wrapping at
// seqFileSize so that the file stays bounded; the file is removed after.
func setupSeqWrite(s *session, tag string) (func() (int64, error), func() error, error) {
	dir, err := s.walk(rootFid, "new")
	if err != nil {
		return nil, nil, err
	}
	f := s.fid()
	name := "w-" + tag
	if _, err := s.c.Walk(dir, f); err != nil {
		return nil, nil, err
	}
	if _, _, err := s.c.Lcreate(f, name, p9wire.OWronly|p9wire.OCreate|p9wire.OTrunc, 0o100644, 0); err != nil {
		return nil, nil, err
	}
	data := make([]byte, s.chunk())
	for i := range data {
		data[i] = byte(i)
	}
	var off uint64
	op := func() (int64, error) {
		n, err := s.c.Write(f, off, data)
		if err != nil {
			return 0, err
		}
		off += uint64(n)
		if off >= seqFileSize {
			off = 0
		}
		return int64(n), nil
	}
	teardown := func() error {
		s.c.Clunk(f)
		err := s.c.Unlinkat(dir, name, 0)
		s.c.Clunk(dir)
		return err
	}
	return op, teardown, nil
}
