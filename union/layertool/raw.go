package layertool

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Import and export make five or six system calls per file, each short
// and waiting on nothing but the local file system. Made through the Go
// runtime's blocking-syscall path, a call the machine's load stretches
// beyond the scheduler's 20 µs tick gets its processor handed off, and the
// runtime wakes another thread (a futex wake and a nanosleep per file,
// measured with strace -c on 20k files; tar has neither). The calls of
// the per-file paths are made raw instead (these, and lstatRaw in
// export_raw_stat.go): the thread keeps its processor. Each tool runs on
// one goroutine, so no other work of ours waits meanwhile; a garbage
// collection waits at most one such call.

func rawErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// rawOpenat is unix.Openat made raw.
func rawOpenat(dirfd int, name string, flags int, mode uint32) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	for {
		fd, _, e := unix.RawSyscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(flags), uintptr(mode), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(fd), nil
	}
}

// rawPwrite is unix.Pwrite made raw.
func rawPwrite(fd int, b []byte, off int64) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall6(unix.SYS_PWRITE64, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(off), 0, 0)
	return int(n), rawErr(e)
}

func rawFchown(fd, uid, gid int) error {
	_, _, e := unix.RawSyscall(unix.SYS_FCHOWN, uintptr(fd), uintptr(uid), uintptr(gid))
	return rawErr(e)
}

func rawFchmod(fd int, mode uint32) error {
	_, _, e := unix.RawSyscall(unix.SYS_FCHMOD, uintptr(fd), uintptr(mode), 0)
	return rawErr(e)
}

// rawFutimens sets both times of the file open at fd.
func rawFutimens(fd int, t unix.Timespec) error {
	ts := [2]unix.Timespec{t, t}
	_, _, e := unix.RawSyscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	return rawErr(e)
}

func rawClose(fd int) error {
	_, _, e := unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
	return rawErr(e)
}

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
