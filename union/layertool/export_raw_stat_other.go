//go:build !(linux && (amd64 || arm64 || riscv64))

package layertool

import "golang.org/x/sys/unix"

// lstatRaw is lstatAt where newfstatat does not fill unix.Stat_t.
func lstatRaw(dirfd int, name string, st *unix.Stat_t) error { return lstatAt(dirfd, name, st) }
