package sandbox

import (
	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/sys/unix"
)

// allowedSyscalls is the seccomp allow-list: every system call the server
// makes once it serves (amd64 names; the library maps them for the running
// architecture and fails on an unknown name). It was derived by running the
// test suites with the server under strace (see the commit that added it)
// and then by running everything with the sandbox on.
//
// Re-check this list whenever p9srv or union change how they reach the
// host: run the suites with --sandbox=log and look for "type=1326" lines
// in dmesg. Deliberately absent: execve/execveat, fork/vfork, socket,
// socketpair, connect, bind, listen, ptrace, mount, setuid and friends,
// kexec, bpf, init_module, open_by_handle_at, keyctl.
var allowedSyscalls = []string{
	// Go runtime: memory, threads, scheduling, signals, timers.
	"mmap", "munmap", "madvise", "mprotect", "mremap", "brk", "mincore",
	"clone", "clone3", "futex", "set_robust_list", "rseq",
	"sched_yield", "sched_getaffinity", "nanosleep", "clock_nanosleep",
	"clock_gettime", "gettimeofday", "getpid", "gettid", "getppid", "tgkill", "tkill",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall",
	"timer_create", "timer_settime", "timer_delete", "setitimer",
	"exit", "exit_group", "getrandom", "prlimit64", "uname",
	"epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait",
	"ppoll", // p9srv waits in poll(2) for room to write, or for a request where a socket cannot block (fdio.go)
	"eventfd2", "pipe2",

	// Descriptors and I/O (files and the accepted connections).
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
	"close", "close_range", "dup", "dup3", "fcntl", "ioctl", "lseek",
	"accept4", "accept", "recvfrom", "sendto", "recvmsg", "sendmsg", "shutdown",
	"getsockname", "getpeername", "getsockopt", "setsockopt",

	// The layers: every call is relative to a held directory descriptor.
	"openat", "openat2", "newfstatat", "fstat", "statx", "fstatfs", "statfs",
	"getdents64", "readlinkat", "mkdirat", "mknodat", "symlinkat", "linkat",
	"unlinkat", "renameat", "renameat2", "fchmod", "fchmodat", "fchmodat2",
	"fchown", "fchownat", "utimensat", "truncate", "ftruncate", "fallocate",
	"fsync", "fdatasync", "syncfs", "sync_file_range", "copy_file_range", "splice",
	"fgetxattr", "fsetxattr", "flistxattr", "fremovexattr",
	"getxattr", "setxattr", "listxattr", "removexattr",
	"lgetxattr", "lsetxattr", "llistxattr", "lremovexattr",
	"flock",

	// Identity (who the server is; it never changes it).
	"getuid", "geteuid", "getgid", "getegid", "capget",
}

// allowedWithArgs are allowed only with the given arguments.
var allowedWithArgs = []seccomp.NameWithConditions{
	// glibc (in binaries built with cgo) names its thread stacks with
	// prctl(PR_SET_VMA); no other prctl is needed once serving.
	{Name: "prctl", Conditions: seccomp.ArgumentConditions{
		{Argument: 0, Operation: seccomp.Equal, Value: unix.PR_SET_VMA}}},
}
