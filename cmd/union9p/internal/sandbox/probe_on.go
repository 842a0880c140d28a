//go:build sandboxprobe

package sandbox

import (
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"
)

// Probe is the confinement test's hook, compiled only with -tags
// sandboxprobe: right after the sandbox is applied, the server itself tries
// what a compromised server would, and prints each result on stderr as
// "sandbox-probe WHAT: RESULT" (RESULT is "ok" or the error):
//
//   - open UNION9P_SANDBOX_PROBE_PATH (a host file outside the layers);
//   - make a TCP socket and a unix socket;
//   - execve /bin/true, last: if it works the server is replaced by it.
func Probe(log *slog.Logger) {
	path := os.Getenv("UNION9P_SANDBOX_PROBE_PATH")
	if path == "" {
		return
	}
	report := func(what string, err error) {
		res := "ok"
		if err != nil {
			res = err.Error()
		}
		fmt.Fprintf(os.Stderr, "sandbox-probe %s: %s\n", what, res)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
	}
	report("open", err)
	fd, err = unix.Openat(unix.AT_FDCWD, path, unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
	}
	report("open-write", err)
	fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
	}
	report("socket-tcp", err)
	fd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
	}
	report("socket-unix", err)
	fmt.Fprintln(os.Stderr, "sandbox-probe execve: trying")
	err = unix.Exec("/bin/true", []string{"true"}, nil)
	report("execve", err)
}
