package control

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Listen makes the control socket at path, owner-only (0600), and returns
// its listener; closing it removes the socket file if it is still this
// one. The socket is bound in a new 0700 directory beside path and renamed
// into place, so it is never reachable by others in between (the process
// umask, shared by all goroutines, is left alone). A path where a server
// answers is refused; a socket nobody answers on (a crashed server's) is
// replaced; anything else at path is refused.
func Listen(path string) (net.Listener, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	var st unix.Stat_t
	switch err := unix.Lstat(abs, &st); {
	case err == nil && st.Mode&unix.S_IFMT != unix.S_IFSOCK:
		return nil, fmt.Errorf("control socket %s: exists and is not a socket; not replaced", path)
	case err == nil:
		if c, err := net.DialTimeout("unix", abs, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s: a server is already listening there", path)
		}
	case !errors.Is(err, unix.ENOENT):
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if len(abs) >= maxSockPath {
		return nil, fmt.Errorf("control socket %s: path longer than a unix socket address allows (%d bytes)", path, maxSockPath-1)
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(abs), ".union9p-control-")
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	defer os.Remove(tmpDir)
	dfd, err := unix.Open(tmpDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	defer unix.Close(dfd)
	// Bound through the directory's descriptor: short whatever path is,
	// and the very directory just made.
	tmp := fmt.Sprintf("/proc/self/fd/%d/s", dfd)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false) // it will not be at tmp; Close below removes it
	fail := func(err error) (net.Listener, error) {
		l.Close()
		unix.Unlinkat(dfd, "s", 0)
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := unix.Fchmodat(dfd, "s", 0o600, 0); err != nil {
		return fail(err)
	}
	if err := unix.Fstatat(dfd, "s", &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fail(err)
	}
	if err := unix.Renameat(dfd, "s", unix.AT_FDCWD, abs); err != nil {
		return fail(err)
	}
	return &listener{UnixListener: l, path: abs, dev: st.Dev, ino: st.Ino}, nil
}

// maxSockPath is the size of sun_path, terminating NUL included.
const maxSockPath = 108

// listener removes its socket file when closed.
type listener struct {
	*net.UnixListener
	path     string
	dev, ino uint64
	once     sync.Once
}

func (l *listener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		// Only our own socket: another server may have replaced it.
		var st unix.Stat_t
		if unix.Lstat(l.path, &st) == nil && st.Dev == l.dev && st.Ino == l.ino {
			os.Remove(l.path)
		}
	})
	return err
}
