//go:build linux && (amd64 || arm64 || riscv64)

package layertool

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// lstatRaw is lstatAt made raw (export_raw.go), where newfstatat fills
// unix.Stat_t as it is; other architectures use lstatAt.
func lstatRaw(dirfd int, name string, st *unix.Stat_t) error {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	_, _, e := unix.RawSyscall6(unix.SYS_NEWFSTATAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(st)), unix.AT_SYMLINK_NOFOLLOW, 0, 0)
	return rawErr(e)
}
