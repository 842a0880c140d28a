package sandbox

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// keptCapabilities are the capabilities a server running as root keeps
// (passthrough ownership: the owners, modes and markers clients ask for
// are stored as they are). Every other capability is dropped.
//
//   - CHOWN, FOWNER, FSETID: chown/chmod/utimes of objects the server's
//     user does not own, keeping setuid and setgid bits (passthrough).
//   - DAC_OVERRIDE, DAC_READ_SEARCH: read and change every object of the
//     layers whatever its mode (the client checks permissions).
//   - MKNOD: device nodes for clients, and 0/0 whiteouts.
//   - SYS_ADMIN: trusted.* xattrs (trusted.overlay.* markers).
//   - SETFCAP: security.capability on copies and for clients.
//
// NET_*, SYS_PTRACE, SYS_MODULE, KILL, SETUID/SETGID, SYS_RESOURCE (ext4's
// reserved blocks) and the rest are dropped.
var keptCapabilities = []uint{
	unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH,
	unix.CAP_FOWNER, unix.CAP_FSETID, unix.CAP_MKNOD,
	unix.CAP_SYS_ADMIN, unix.CAP_SETFCAP,
}

// keptReadOnly are those a read-only union (no upper) keeps: reading every
// object and the trusted.overlay.* markers, and O_NOATIME on files the
// server's user does not own.
var keptReadOnly = []uint{
	unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH, unix.CAP_FOWNER, unix.CAP_SYS_ADMIN,
}

// dropCapabilities reduces the capability sets of every thread to those
// the mode needs (kept ∩ what the process has). An unprivileged server has
// none to drop. The bounding set is reduced too (it bounds what any later
// execve could get; execve is denied anyway).
func dropCapabilities(readOnly bool) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var cur [2]unix.CapUserData
	if err := unix.Capget(&hdr, &cur[0]); err != nil {
		return err
	}
	if cur[0].Permitted == 0 && cur[1].Permitted == 0 && cur[0].Inheritable == 0 && cur[1].Inheritable == 0 {
		return nil // unprivileged: nothing to drop
	}
	keep := keptCapabilities
	if readOnly {
		keep = keptReadOnly
	}
	var want [2]uint32
	for _, c := range keep {
		want[c/32] |= 1 << (c % 32)
	}

	// The bounding set first: dropping needs CAP_SETPCAP, dropped below.
	if hasCap(cur, unix.CAP_SETPCAP) {
		for c := uint(0); c <= unix.CAP_LAST_CAP; c++ {
			if want[c/32]&(1<<(c%32)) != 0 {
				continue
			}
			if _, _, e := allThreads(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); e != 0 {
				if e == unix.ENOTSUP {
					return errNoAllThreads
				}
				if e == unix.EINVAL {
					break // past the kernel's last capability
				}
				return fmt.Errorf("drop capability %d from the bounding set: %w", c, e)
			}
		}
	}
	if _, _, e := allThreads(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0); e != 0 && e != unix.EINVAL {
		if e == unix.ENOTSUP {
			return errNoAllThreads
		}
		return fmt.Errorf("clear ambient capabilities: %w", e)
	}
	var next [2]unix.CapUserData
	for i := range next {
		next[i].Permitted = cur[i].Permitted & want[i]
		next[i].Effective = next[i].Permitted
	}
	_, _, e := allThreads(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&next[0])), 0)
	runtime.KeepAlive(&hdr)
	runtime.KeepAlive(&next)
	switch e {
	case 0:
		return nil
	case unix.ENOTSUP:
		return errNoAllThreads
	}
	return fmt.Errorf("capset: %w", e)
}

func hasCap(d [2]unix.CapUserData, c uint) bool {
	return d[c/32].Effective&(1<<(c%32)) != 0
}
