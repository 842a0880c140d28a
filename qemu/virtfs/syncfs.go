package virtfs

import "syscall"

// FUSE_SYNCFS (opSyncfs) is the guest's sync(2) or syncfs(2) on the
// mount (virtio-fs sends it since Linux 5.15). go-fuse has no handler
// for it; answered ENOSYS, the guest stops sending it and its syncs
// return success with the union's writes maybe still only in the host's
// page cache. Protocol answers it by syncing the upper's filesystem.

// syncfs answers the FUSE_SYNCFS request in and returns the bytes of
// the reply written into out.
func (p *Protocol) syncfs(in, out [][]byte) int {
	var errno syscall.Errno
	if err := p.t.u.SyncFS(); err != nil {
		p.logger.Print(err)
		errno = errnoOf(err)
	}
	return errorReply(in, out, errno)
}
