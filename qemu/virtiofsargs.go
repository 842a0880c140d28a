package qemu

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The virtiofs transport (`union9p qemu --transport virtiofs`): union9p
// is a vhost-user-fs device (package qemu/vhostuser) that QEMU connects
// to over a unix socket; the guest mounts `-t virtiofs union9p.NAME
// DIR`. The device reads and writes the guest's RAM itself, so QEMU must
// put that RAM in a shared memfd.

// VirtiofsModules are the modules a guest needs to mount over virtio-fs
// (fuse comes as their dependency).
var VirtiofsModules = []string{"virtio_pci", "virtiofs"}

// VirtiofsQueueSize is the request queue's size: Linux limits a request
// to the queue size less a few descriptors, so 1024 lets a READ or WRITE
// carry 1 MiB (256 pages).
const VirtiofsQueueSize = 1024

// virtiofsMemID is the id of the shared memory backend added to QEMU.
const virtiofsMemID = "union9p-mem"

// VirtiofsMemArgs put the guest's RAM of size (QEMU's -m syntax: a
// number of MiB, or with a K, M, G, T suffix) in a shared memfd, which a
// vhost-user device needs. Empty when the command line already names a
// memory backend (the caller's own must then be share=on).
func VirtiofsMemArgs(qemuArgs []string) ([]string, error) {
	size := "128M" // QEMU's default
	for i, a := range qemuArgs {
		if strings.Contains(a, "memory-backend") {
			return nil, nil
		}
		if (a == "-m" || a == "--m") && i+1 < len(qemuArgs) {
			v := qemuArgs[i+1]
			for _, kv := range strings.Split(v, ",") {
				if s, ok := strings.CutPrefix(kv, "size="); ok {
					v = s
				} else if !strings.Contains(kv, "=") {
					v = kv
				}
			}
			if _, err := strconv.ParseUint(v, 10, 64); err == nil {
				v += "M"
			}
			size = v
		}
	}
	if size == "" || strings.ContainsAny(size, ",=") {
		return nil, fmt.Errorf("guest memory size %q: give -m SIZE", size)
	}
	return []string{
		"-object", fmt.Sprintf("memory-backend-memfd,id=%s,size=%s,share=on", virtiofsMemID, size),
		"-machine", "memory-backend=" + virtiofsMemID,
	}, nil
}

// VirtiofsArgs are QEMU's arguments for the vhost-user-fs device of
// union NAME whose backend listens at socket (tag union9p.NAME).
func VirtiofsArgs(socket, name string) []string {
	id := "union9p-vfs-" + name
	return []string{
		"-chardev", fmt.Sprintf("socket,id=%s,path=%s", id, socket),
		"-device", fmt.Sprintf("vhost-user-fs-pci,chardev=%s,tag=%s,queue-size=%d", id, VirtfsTagPrefix+name, VirtiofsQueueSize),
	}
}

// virtiofsTags is where the guest kernel lists its virtio-fs devices'
// tags (Linux 6.1 has no sysfs file for the tag; the driver's devices
// are listed and the tag read from the device's config space).
const virtiofsDevices = "/sys/bus/virtio/drivers/virtiofs/virtio*"

// VirtiofsDeviceCount reports how many virtio-fs devices the guest has
// (run in the guest; needs the virtiofs module). A tag cannot be read
// from sysfs in Linux 6.1: mount -t virtiofs TAG is the test.
func VirtiofsDeviceCount() int {
	paths, _ := filepath.Glob(virtiofsDevices)
	n := 0
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			n++
		}
	}
	return n
}
