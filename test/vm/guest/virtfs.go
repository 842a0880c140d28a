package main

import (
	"os"

	"github.com/union9p/union9p/qemu"

	"github.com/union9p/union9p/test/internal/guestutil"
	"github.com/union9p/union9p/test/vm/fixture"
)

// The union on the virtfs transport (`union9p qemu --virtfs`, the
// default path as root): QEMU's own 9p server over virtio-9p, in front
// of union9p's FUSE frontend on the host.
const (
	hostVfsPort  = "hostvfs" // guest-mount finds the virtio-9p tag union9p.hostvfs first
	hostVfsMount = "/mnt/hostvfs"
)

// hostVirtfs mounts the virtfs union by name, runs the suite on it and
// returns the tree it saw (nil if the mount failed). The host offers
// the union only with vmtest -virtfs: without its virtio-9p tag there
// is no such suite in this run.
func (r *runner) hostVirtfs() []string {
	if !qemu.VirtfsTagExists(qemu.VirtfsTagPrefix + hostVfsPort) {
		return nil
	}
	if !r.step("hostvfs", "guest-mount", func() error {
		if err := os.MkdirAll(hostVfsMount, 0o755); err != nil {
			return err
		}
		if err := guestutil.Command("/bin/union9p", "guest-mount", "-o", mountOptions, hostVfsPort, hostVfsMount); err != nil {
			return err
		}
		// The virtio-9p tag, not the network: guest-mount chose virtfs.
		return mountedWith(hostVfsMount, "union9p.hostvfs")
	}) {
		r.skipSuite("hostvfs", "guest-mount failed")
		return nil
	}
	r.suite("hostvfs", hostVfsMount)
	var view []string
	r.step("hostvfs", "manifest", func() (err error) {
		view, err = fixture.Manifest(hostVfsMount, viewOptions)
		return err
	})
	r.step("hostvfs", "unmount", func() error { return guestutil.UnmountAndWait(hostVfsMount, "") })
	return view
}
