package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/union9p/union9p/qemu"
	"golang.org/x/sys/unix"
)

// guestMountVirtiofs mounts union NAME (spec NAME, union9p.NAME or
// virtiofs:NAME) from the virtio-fs device of the virtiofs transport, in
// the guest. handled is false when spec names no virtio-fs device (the
// guest has none, or none with that tag) and was not explicitly
// virtiofs:, so that the other transports are tried. opts are FUSE mount
// data options (flags such as ro were split off).
//
// Linux 6.1 shows no virtio-fs tag in sysfs; a mount of an unknown tag
// fails with EINVAL (and changes nothing), so the mount is the lookup.
func guestMountVirtiofs(spec, dir string, flags uintptr, opts []string) (handled bool, err error) {
	explicit := strings.HasPrefix(spec, "virtiofs:")
	if !explicit && (strings.Contains(spec, ":") || strings.Contains(spec, "/")) {
		return false, nil
	}
	if !explicit && qemu.VirtiofsDeviceCount() == 0 {
		return false, nil
	}
	name := strings.TrimPrefix(strings.TrimPrefix(spec, "virtiofs:"), qemu.VirtfsTagPrefix)
	tag := qemu.VirtfsTagPrefix + name
	data := strings.Join(opts, ",")
	err = unix.Mount(tag, dir, "virtiofs", flags, data)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, unix.EINVAL) && !explicit {
		return false, nil // no device with this tag (or bad options: the other transports will say)
	}
	return true, fmt.Errorf("mount -t virtiofs %s on %s (-o %s): %w", tag, dir, data, err)
}
