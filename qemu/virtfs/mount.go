package virtfs

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Mount makes a detached FUSE mount (package comment): dev is the FUSE
// connection, for Serve, and mnt the mount, for QEMU (-virtfs
// local,path=/proc/self/fd/N with mnt at N). The mount goes away when
// the last copy of mnt is closed. It needs CAP_SYS_ADMIN; the mount
// admits only the calling user's processes.
func Mount() (dev, mnt *os.File, err error) {
	devFd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/fuse: %w", err)
	}
	dev = os.NewFile(uintptr(devFd), "/dev/fuse")
	fsFd, err := unix.Fsopen("fuse", unix.FSOPEN_CLOEXEC)
	if err != nil {
		dev.Close()
		return nil, nil, fmt.Errorf("fsopen fuse: %w", err)
	}
	defer unix.Close(fsFd)
	for _, o := range [][2]string{
		{"source", "union9p"},
		{"fd", strconv.Itoa(devFd)},
		{"rootmode", "40000"},
		{"user_id", strconv.Itoa(os.Getuid())},
		{"group_id", strconv.Itoa(os.Getgid())},
	} {
		if err := unix.FsconfigSetString(fsFd, o[0], o[1]); err != nil {
			dev.Close()
			return nil, nil, fmt.Errorf("fsconfig fuse %s=%s: %w", o[0], o[1], err)
		}
	}
	if err := unix.FsconfigCreate(fsFd); err != nil {
		dev.Close()
		return nil, nil, fmt.Errorf("fsconfig fuse create: %w", err)
	}
	mntFd, err := unix.Fsmount(fsFd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		dev.Close()
		return nil, nil, fmt.Errorf("fsmount fuse: %w", err)
	}
	return dev, os.NewFile(uintptr(mntFd), "union9p-virtfs"), nil
}
