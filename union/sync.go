package union

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// SyncFS writes the upper layer's filesystem out to its disk (syncfs(2)),
// for a client's sync(2): what the union stored is then durable. A
// read-only union has nothing to write. Safe for concurrent use.
func (u *Union) SyncFS() error {
	if u.upper == nil {
		return nil
	}
	// syncfs needs a descriptor that is not O_PATH.
	fd, err := unix.Openat(u.upper.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sync the upper layer: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("sync the upper layer: %w", err)
	}
	return nil
}
