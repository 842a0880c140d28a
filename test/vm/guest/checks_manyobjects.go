package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/union9p/union9p/test/vm/fixture"
	"golang.org/x/sys/unix"
)

// checkManyObjects makes the guest know more objects than the server has
// descriptors (the VM harness runs the virtiofs server with a limit of
// 4096, under big/'s 20,000 entries): it stats every entry of big/
// twice, the second time asking the server again (AT_STATX_FORCE_SYNC:
// the guest would otherwise answer from its attribute cache), then
// opens and reads a sample of them and a file with data. virtio-fs on
// Linux 6.1 cannot make the guest forget objects, so a server that keeps
// descriptors for every object the guest knows fails this with EMFILE.
// The inode numbers must not change between the passes: a node the
// server let go of and found again is the same object.
//
// It returns how long each part took, for the log.
func checkManyObjects(mount string) (string, error) {
	start := time.Now()
	var times []string
	lap := func(what string) {
		times = append(times, fmt.Sprintf("%s %v", what, time.Since(start).Round(time.Millisecond)))
		start = time.Now()
	}
	dir := filepath.Join(mount, "big")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	// The suite's readdir checks added a few empty files to big/.
	if len(ents) < fixture.BigDirEntries {
		return "", fmt.Errorf("%s: %d entries, want at least %d", dir, len(ents), fixture.BigDirEntries)
	}
	lap("readdir")
	inos := make(map[string]uint64, len(ents))
	for pass, flags := range []int{unix.AT_SYMLINK_NOFOLLOW, unix.AT_SYMLINK_NOFOLLOW | unix.AT_STATX_FORCE_SYNC} {
		seen := make(map[uint64]string, len(ents))
		for _, e := range ents {
			var st unix.Statx_t
			if err := unix.Statx(unix.AT_FDCWD, filepath.Join(dir, e.Name()), flags, unix.STATX_BASIC_STATS, &st); err != nil {
				return "", fmt.Errorf("pass %d: statx %s: %w", pass+1, e.Name(), err)
			}
			if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != 0 {
				return "", fmt.Errorf("pass %d: %s: mode %o size %d, want an empty regular file", pass+1, e.Name(), st.Mode, st.Size)
			}
			if o, dup := seen[st.Ino]; dup {
				return "", fmt.Errorf("pass %d: %s and %s have one inode number %d", pass+1, o, e.Name(), st.Ino)
			}
			seen[st.Ino] = e.Name()
			if pass == 0 {
				inos[e.Name()] = st.Ino
			} else if st.Ino != inos[e.Name()] {
				return "", fmt.Errorf("%s: inode %d in the second pass, %d in the first", e.Name(), st.Ino, inos[e.Name()])
			}
		}
		lap(fmt.Sprintf("stat pass %d", pass+1))
	}
	for i := 0; i < len(ents); i += 10 {
		b, err := os.ReadFile(filepath.Join(dir, ents[i].Name()))
		if err != nil || len(b) != 0 {
			return "", fmt.Errorf("read %s: %d bytes, %v", ents[i].Name(), len(b), err)
		}
	}
	lap(fmt.Sprintf("%d reads", (len(ents)+9)/10))
	if b, err := os.ReadFile(filepath.Join(mount, "read/merged/both")); err != nil || string(b) != "l1 both\n" {
		return "", fmt.Errorf("read read/merged/both after: %q, %v", b, err)
	}
	return strings.Join(times, ", "), nil
}
