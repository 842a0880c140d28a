package virtfs

import (
	"encoding/binary"
	"syscall"
)

// opSyncfs is FUSE_SYNCFS: the guest's sync(2) or syncfs(2) on the
// mount (virtio-fs sends it since Linux 5.15). go-fuse has no handler
// for it; answered ENOSYS, the guest stops sending it and its syncs
// return success with the union's writes maybe still only in the host's
// page cache. Protocol answers it by syncing the upper's filesystem.
const opSyncfs = 50

// inHeaderOpcode is fuse_in_header.opcode's offset.
const inHeaderOpcode = 4

// syncfs answers a FUSE_SYNCFS request if in is one: ok reports whether
// it was, n the bytes of the reply written into out.
func (p *Protocol) syncfs(in, out [][]byte) (n int, ok bool) {
	var op [4]byte
	if copyIov(op[:], in, inHeaderOpcode) < len(op) || binary.LittleEndian.Uint32(op[:]) != opSyncfs {
		return 0, false
	}
	var errno syscall.Errno
	if err := p.u.SyncFS(); err != nil {
		p.logger.Print(err)
		errno = errnoOf(err)
	}
	return p.reply(in, out, errno), true
}
