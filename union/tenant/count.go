package tenant

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Measurement is what Measure counts in a directory tree.
type Measurement struct {
	Usage
	// DiskBytes is the allocated size (st_blocks × 512), as plain du.
	DiskBytes int64 `json:"disk_bytes"`
}

// Measure counts the tree below the directory dirfd, root included, with
// the semantics of GNU du run on it with one filesystem only:
//
//   - Bytes     = du -s -x --apparent-size --block-size=1 (st_size summed;
//     directories count their st_size, symbolic links the length of their
//     target, devices, FIFOs, sockets and whiteouts 0);
//   - DiskBytes = du -s -x --block-size=1 (st_blocks × 512 summed), so a
//     sparse file counts its size in Bytes and only its data in DiskBytes;
//   - Inodes    = du -s -x --inodes.
//
// Every inode counts once, however many hard links reach it in the tree
// (du's default). Mount points of other filesystems below the root are
// neither counted nor descended, as with -x; a bind mount of the same
// filesystem counts as one directory and is not descended (du -x would
// enter it). The walk follows no symbolic link (see walk).
func Measure(dirfd int) (Measurement, error) {
	var m Measurement
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, "", &st, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return m, err
	}
	add := func(st *unix.Stat_t) {
		m.Inodes++
		m.Bytes += max(0, st.Size)
		m.DiskBytes += st.Blocks * 512
	}
	add(&st)
	rootDev := st.Dev
	// Only inodes with more than one link can be met twice; remembering
	// only those keeps the set small.
	seen := map[uint64]bool{}
	err := walk(dirfd, walkVisitor{
		visit: func(_ int, _ string, st *unix.Stat_t) (bool, error) {
			if st.Dev != rootDev {
				return false, nil // the root of another mount
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1 {
				if seen[st.Ino] {
					return false, nil
				}
				seen[st.Ino] = true
			}
			add(st)
			return true, nil
		},
		mountPoint: func(int, string) error { return nil },
	})
	if err != nil {
		return Measurement{}, fmt.Errorf("count: %w", err)
	}
	return m, nil
}
