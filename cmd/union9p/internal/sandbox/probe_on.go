//go:build sandboxprobe

package sandbox

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// harnessSyscalls are what a Go test binary needs beyond the server: to be
// exec'd and start (execve, arch_prctl, set_tid_address), and to make its
// own listener and client sockets (the p9srv suite serves and dials in one
// process).
var harnessSyscalls = []string{"execve", "arch_prctl", "set_tid_address", "socket", "bind", "listen", "connect"}

func init() {
	if bin := os.Getenv("UNION9P_SANDBOX_EXEC"); bin != "" {
		execConfined(bin)
	}
}

// execConfined is the other test hook: it applies the server's sandbox
// (capabilities, no_new_privs, Landlock, seccomp) to this process and then
// execs bin (a test binary) with the arguments after "--", so that a whole
// test suite runs under the server's confinement: Landlock allows reading
// UNION9P_SANDBOX_EXEC_READ (":"-separated), reading and writing
// UNION9P_SANDBOX_EXEC_WRITE, and executing bin's directory; seccomp the
// server's list plus harnessSyscalls. Landlock domains, seccomp filters,
// no_new_privs and the bounding set survive execve.
func execConfined(bin string) {
	cfg := Config{Mode: On, WriteDirs: []string{os.Getenv("UNION9P_SANDBOX_EXEC_WRITE")},
		execDirs: []string{filepath.Dir(bin)}, extraSyscalls: harnessSyscalls,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	if r := os.Getenv("UNION9P_SANDBOX_EXEC_READ"); r != "" {
		cfg.ReadDirs = strings.Split(r, ":")
	}
	if err := Apply(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox-exec:", err)
		os.Exit(111)
	}
	args := []string{bin}
	for i, a := range os.Args {
		if a == "--" {
			args = append(args, os.Args[i+1:]...)
			break
		}
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "UNION9P_SANDBOX_") {
			env = append(env, e)
		}
	}
	err := unix.Exec(bin, args, env)
	fmt.Fprintln(os.Stderr, "sandbox-exec: execve:", err)
	os.Exit(111)
}

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
