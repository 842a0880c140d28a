package virtfs

import (
	"encoding/binary"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// # Direct reads where the guest can mmap direct-io files (Linux 6.6+)
//
// A guest kernel from 6.6 on offers FUSE_DIRECT_IO_ALLOW_MMAP (bit 36 of
// the INIT flags, so bit 4 of flags2; 6.6 called it FUSE_DIRECT_IO_RELAX)
// and, when the reply accepts it, lets a FOPEN_DIRECT_IO file be mmapped
// MAP_SHARED instead of failing with ENODEV. Protocol accepts it (go-fuse
// passes it through MountOptions.ExtraCapabilities, and only where the
// guest offered it) and then answers every open of a regular file
// FOPEN_DIRECT_IO, reads included: a read(2) goes to the union in one
// request, into the caller's own pages, with none of the guest's
// per-page page-cache work that dominates a buffered read under
// emulation. A guest that does not offer the flag (6.1) keeps the
// write-only rule of directio.go exactly.
//
// Coherence once every open is direct, as the guest kernel keeps it
// (fs/fuse/file.c, 6.6 to 6.12): the page cache of a file then holds only
// the pages of its mmaps (MAP_SHARED, and MAP_PRIVATE such as an
// executable's text). A direct read first writes back the range's dirty
// pages (so read(2) sees stores made through a MAP_SHARED mapping); a
// direct write drops the range's pages before and after it writes (so a
// mapping sees write(2)'s data on its next fault); every mmap of a
// direct-io file drops the file's cached pages first. directio.go's rule
// (the next open after a direct write is answered without
// FOPEN_KEEP_CACHE) still holds and is now redundant for this guest's own
// writes; it stays for the 6.1 path and costs one page-cache drop per
// open after a write. Changes made by someone else than this guest (the
// host, another guest of the same union) are seen by the next read(2) at
// once, but by a mapping only after the guest drops its pages (the next
// mmap of the file, or an open after one of its own writes).
//
// The cost: nothing is cached for read(2), so reading the same file
// again goes to the union again (as QEMU's virtio-9p with cache=mmap),
// and each mmap of a file (each exec of a program on the mount) fetches
// its pages again.

// directMmapFlag is FUSE_DIRECT_IO_ALLOW_MMAP's bit in fuse_init_out's
// flags2 (flags2 holds bits 32..63; FUSE_INIT_EXT in flags says it is
// there).
const directMmapFlag = uint32(fuse.CAP_DIRECT_IO_ALLOW_MMAP >> 32)

// initOut offsets (struct fuse_init_out, after fuse_out_header).
const (
	initOutFlags  = 12
	initOutFlags2 = 32
)

// sawInit notes, after go-fuse wrote the n-byte reply out to an INIT
// request, whether it accepted FUSE_DIRECT_IO_ALLOW_MMAP:
// opens are then direct for reading too (openFlags). Every INIT sets it
// anew (a guest that remounts negotiates again). Reading the reply, not
// the request, keeps the rule tied to what the guest was told.
func (p *Protocol) sawInit(out [][]byte, n int) {
	var reply [outHeaderSize + initOutFlags2 + 4]byte
	got := copyIov(reply[:min(n, len(reply))], out, 0)
	accepted := false
	if got == len(reply) && binary.LittleEndian.Uint32(reply[4:]) == 0 {
		flags := binary.LittleEndian.Uint32(reply[outHeaderSize+initOutFlags:])
		flags2 := binary.LittleEndian.Uint32(reply[outHeaderSize+initOutFlags2:])
		accepted = flags&fuse.CAP_INIT_EXT != 0 && flags2&directMmapFlag != 0
	}
	p.t.readDirect.Store(accepted)
}
