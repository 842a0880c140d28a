package virtfs

import (
	"encoding/binary"
	"fmt"
	"log"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// Protocol serves a union's FUSE requests that arrive in memory rather
// than on a /dev/fuse descriptor: virtio-fs, where a request and the
// buffers for its reply are the guest's own pages (package
// qemu/vhostuser hands them over). go-fuse's ProtocolServer parses the
// request from the readable buffers and writes the reply into the
// writable ones: the data of a READ is read by the union straight into
// the guest's pages, and a WRITE's data is taken from them, with no
// copy in between.
//
// The same node tree as [New] answers, without the known-objects budget:
// virtio-fs in Linux 6.1 has no notification queue, so the server cannot
// ask the guest to forget entries; the guest forgets them under its own
// memory pressure (FORGET). Instead, idle nodes let go of the union's
// descriptors (hold.go): at most a quarter of the descriptor limit that
// holds when NewProtocol is called (RLIMIT_NOFILE) stay held while idle.
//
// Handle is safe for concurrent use (go-fuse's handlers are).
type Protocol struct {
	ps     *fuse.ProtocolServer
	t      *tree              // the node tree's shared state (node.go)
	raw    fuse.RawFileSystem // for tests
	root   *node              // for tests
	logger *log.Logger
}

// NewProtocol prepares to serve u with the owners squash gives; logger
// gets go-fuse's messages and malformed requests.
func NewProtocol(u *union.Union, logger *log.Logger, squash union.Squash) (*Protocol, error) {
	nofile := uint64(1 << 20)
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && lim.Cur > 0 {
		nofile = lim.Cur
	}
	p, err := newProtocolHeld(u, logger, maxHeldFor(nofile))
	if err != nil {
		return nil, err
	}
	p.t.squash = squash // before any request
	return p, nil
}

// newProtocolHeld is NewProtocol, without squash, keeping at most maxHeld
// idle nodes held.
func newProtocolHeld(u *union.Union, logger *log.Logger, maxHeld int) (*Protocol, error) {
	root, err := u.Root()
	if err != nil {
		return nil, fmt.Errorf("virtiofs: root: %w", err)
	}
	a, err := root.Attr()
	if err != nil {
		root.Release()
		return nil, fmt.Errorf("virtiofs: root: %w", err)
	}
	opts := nodeOptions(a.ID, logger)
	// No READDIRPLUS: each entry of one would become an object the guest
	// keeps (and the union a node with descriptors) until the guest's
	// memory pressure forgets it, and without notifications the server
	// cannot ask it to (measured: a getdents of the VM suite's 20,000
	// entries, then EMFILE for everything at this host's 20,000
	// descriptors). A stat after a plain READDIR costs one LOOKUP.
	opts.MountOptions.DisableReadDirPlus = true
	// No writeback cache (FUSE_WRITEBACK_CACHE): tried, and bench-guest's
	// dd write (32 MiB, conv=fsync) went from 0.60 s write-through to
	// 1.67 s, the guest's writeback copying and sending page by page.
	// Accepted only where the guest offers it (go-fuse ANDs these with
	// the INIT request's flags); Handle then notes it (directmmap.go).
	opts.MountOptions.ExtraCapabilities |= fuse.CAP_DIRECT_IO_ALLOW_MMAP
	// Write-only opens are direct-io (directio.go).
	t := &tree{u: u, h: newHeld(maxHeld), writeDirect: true}
	rootNode := newNode(t, root)
	rootNode.root = true
	rawFS := &noOpendir{fs.NewNodeFS(rootNode, opts)}
	return &Protocol{ps: fuse.NewProtocolServer(rawFS, &opts.MountOptions), t: t, raw: rawFS, root: rootNode, logger: logger}, nil
}

// outHeaderSize is struct fuse_out_header: len, error, unique.
const outHeaderSize = 16

// Handle answers one FUSE request (in: fuse_in_header and arguments,
// then a WRITE's data; out: room for fuse_out_header, the reply and a
// READ's data) and returns the bytes written into out. A request go-fuse
// cannot parse, or whose reply has too little room, is answered EIO if
// out has room for a header, else nothing (the guest then sees a reply
// of 0 bytes, which its driver fails).
func (p *Protocol) Handle(queue int, in, out [][]byte) int {
	op, ok := opcode(in)
	if ok && op == opSyncfs {
		return p.syncfs(in, out)
	}
	n, st := p.ps.HandleRequest(in, out)
	if st.Ok() {
		if ok && op == opInit {
			p.sawInit(out, n)
		}
		return n
	}
	return errorReply(in, out, syscall.EIO)
}

// errorReply writes a reply of only a fuse_out_header with errno (0:
// success) for request in, and returns its size, or 0 if out has no room
// for it (the guest's driver then fails the request itself).
func errorReply(in, out [][]byte, errno syscall.Errno) int {
	var hdr [outHeaderSize]byte
	var unique [8]byte
	copyIov(unique[:], in, 8) // fuse_in_header.unique
	binary.LittleEndian.PutUint32(hdr[0:], outHeaderSize)
	binary.LittleEndian.PutUint32(hdr[4:], uint32(-int32(errno)))
	copy(hdr[8:], unique[:])
	if copyToIov(out, hdr[:]) < outHeaderSize {
		return 0
	}
	return outHeaderSize
}

// copyIov copies from iov, starting off bytes in, into dst.
func copyIov(dst []byte, iov [][]byte, off int) int {
	n := 0
	for _, b := range iov {
		if off >= len(b) {
			off -= len(b)
			continue
		}
		n += copy(dst[n:], b[off:])
		off = 0
		if n == len(dst) {
			break
		}
	}
	return n
}

// copyToIov copies src into iov's buffers in order.
func copyToIov(iov [][]byte, src []byte) int {
	n := 0
	for _, b := range iov {
		if n == len(src) {
			break
		}
		n += copy(b, src[n:])
	}
	return n
}
