package layertool

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Export's per-file system calls (stat, open, list xattrs, read, close)
// are made raw, for the reason import_raw.go gives: through the runtime's
// blocking-syscall path, perf counted 7.5k-10k context switches per 100k
// files (the scheduler's monitor handing our processor off during calls
// the machine's load stretches) and the entry and exit bookkeeping of
// five calls a file; tar c has neither. Export runs on one goroutine; a
// garbage collection waits at most one such call.

// rawRead is unix.Read made raw.
func rawRead(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawFlistxattr is unix.Flistxattr made raw (b not empty).
func rawFlistxattr(fd int, b []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_FLISTXATTR, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// openFileRaw is openFileFd made raw.
func openFileRaw(dirfd int, name string) (int, error) {
	fd, err := rawOpenat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOATIME, 0)
	if err == unix.EPERM {
		// O_NOATIME needs ownership of the file.
		fd, err = rawOpenat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	return fd, err
}
