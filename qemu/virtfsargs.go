package qemu

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// VirtfsTagPrefix starts the virtio-9p mount tag of a union served over
// virtfs (`union9p qemu --transport virtfs`): union NAME is tag
// union9p.NAME.
const VirtfsTagPrefix = "union9p."

// VirtfsArgs are QEMU's arguments that export the union NAME, a FUSE
// mount that QEMU holds as descriptor fd (package virtfs), with QEMU's
// own 9p server over virtio-9p. security_model=passthrough: QEMU (root)
// stores the guest's owners and modes as they are, as union9p serve does
// as root.
func VirtfsArgs(fd int, name string) []string {
	return []string{"-virtfs", fmt.Sprintf("local,path=/proc/self/fd/%d,mount_tag=%s,security_model=passthrough,id=union9p-virtfs-%s",
		fd, VirtfsTagPrefix+name, name)}
}

// virtio9pTags is where the guest kernel lists the mount tags of its
// virtio-9p devices.
const virtio9pTags = "/sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag"

// VirtfsTagExists reports whether the guest has a virtio-9p device
// with the tag (run in the guest; needs the 9pnet_virtio module).
func VirtfsTagExists(tag string) bool {
	paths, _ := filepath.Glob(virtio9pTags)
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && strings.TrimRight(string(b), "\x00\n") == tag {
			return true
		}
	}
	return false
}

// DefaultVirtioMsize is the msize asked for over virtio-9p: the largest
// the kernel's virtio transport takes (4 KiB × 125 in Linux 6.1).
const DefaultVirtioMsize = 512000

// NinePVirtioData returns the data string for mount -t 9p TAG with
// trans=virtio: version=9p2000.L and msize=[DefaultVirtioMsize] unless
// opts say otherwise, then opts.
func NinePVirtioData(opts []string) (string, error) {
	return ninePData([]string{"trans=virtio"}, DefaultVirtioMsize, opts)
}
