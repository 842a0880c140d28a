package sandbox

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

var errLandlockUnavailable = errors.New("landlock not available in this kernel")

// Filesystem access rights by the Landlock ABI that introduced them.
const (
	fsRightsABI1 = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR |
		unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR |
		unix.LANDLOCK_ACCESS_FS_MAKE_REG | unix.LANDLOCK_ACCESS_FS_MAKE_SOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM
	fsRightsABI2 = fsRightsABI1 | unix.LANDLOCK_ACCESS_FS_REFER
	fsRightsABI3 = fsRightsABI2 | unix.LANDLOCK_ACCESS_FS_TRUNCATE
	fsRightsABI5 = fsRightsABI3 | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV

	// readRights: a lower layer is only read.
	readRights = unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR

	// landlockRestrictSelfTSync (ABI 8) restricts every thread at once.
	landlockRestrictSelfTSync = 0x8
)

// handledFS is the set of filesystem rights the ruleset governs for a
// Landlock ABI: every right the kernel knows.
func handledFS(abi int) uint64 {
	switch {
	case abi >= 5:
		return fsRightsABI5
	case abi >= 3:
		return fsRightsABI3
	case abi == 2:
		return fsRightsABI2
	}
	return fsRightsABI1
}

// rulesetAttr is struct landlock_ruleset_attr as of ABI 6 (the kernel takes
// the size, so older kernels read the prefix they know).
type rulesetAttr struct {
	handledAccessFS  uint64
	handledAccessNet uint64
	scoped           uint64
}

// restrictPaths limits every thread's filesystem access to reading
// readDirs and reading and writing writeDirs (no execute anywhere, no
// device ioctls), and, where the ABI allows, forbids TCP bind and connect
// and scopes abstract unix sockets and signals to the process. It returns
// the ABI version used.
func restrictPaths(readDirs, writeDirs, execDirs []string) (int, error) {
	v, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 {
		return 0, fmt.Errorf("%w: %v", errLandlockUnavailable, e)
	}
	abi := int(v)
	if abi < 2 {
		// ABI 1 forbids every rename and link across directories, and a
		// copy-up is a rename from the work directory into the upper.
		return abi, fmt.Errorf("%w: ABI 1 forbids renames across directories (copy-up needs them)", errLandlockUnavailable)
	}
	attr := rulesetAttr{handledAccessFS: handledFS(abi)}
	size := unsafe.Sizeof(attr.handledAccessFS)
	if abi >= 4 {
		attr.handledAccessNet = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
		size += unsafe.Sizeof(attr.handledAccessNet)
	}
	if abi >= 6 {
		attr.scoped = unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | unix.LANDLOCK_SCOPE_SIGNAL
		size += unsafe.Sizeof(attr.scoped)
	}
	rfd, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if e != 0 {
		return abi, fmt.Errorf("create ruleset: %w", e)
	}
	defer unix.Close(int(rfd))

	writeRights := attr.handledAccessFS &^ (unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV)
	for _, d := range readDirs {
		if err := allowBeneath(int(rfd), d, readRights); err != nil {
			return abi, err
		}
	}
	for _, d := range writeDirs {
		if err := allowBeneath(int(rfd), d, writeRights); err != nil {
			return abi, err
		}
	}
	for _, d := range execDirs {
		if err := allowBeneath(int(rfd), d, readRights|unix.LANDLOCK_ACCESS_FS_EXECUTE); err != nil {
			return abi, err
		}
	}

	if abi >= 8 {
		if _, _, e := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, rfd, landlockRestrictSelfTSync, 0); e != 0 {
			return abi, fmt.Errorf("restrict self: %w", e)
		}
		return abi, nil
	}
	if _, _, e := allThreads(unix.SYS_LANDLOCK_RESTRICT_SELF, rfd, 0, 0); e != 0 {
		if e == unix.ENOTSUP {
			return abi, errNoAllThreads
		}
		return abi, fmt.Errorf("restrict self: %w", e)
	}
	return abi, nil
}

// allowBeneath adds a rule granting rights beneath the directory dir.
func allowBeneath(ruleset int, dir string, rights uint64) error {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	rule := unix.LandlockPathBeneathAttr{Allowed_access: rights, Parent_fd: int32(fd)}
	if _, _, e := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(ruleset), unix.LANDLOCK_RULE_PATH_BENEATH,
		uintptr(unsafe.Pointer(&rule)), 0, 0, 0); e != 0 {
		return fmt.Errorf("allow %s: %w", dir, e)
	}
	return nil
}
