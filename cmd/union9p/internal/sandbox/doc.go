// Package sandbox confines a running union9p server to what serving a
// union needs, so that a bug in the server (or in a library it uses) cannot
// reach the rest of the host. It is applied once, after the layers and the
// listening sockets are open and before the first client is served.
//
// # What is applied, in order
//
//  1. Capabilities: a server running as root keeps only those its ownership
//     mode needs (capabilities.go); every other one leaves the permitted,
//     effective, inheritable, ambient and bounding sets.
//  2. no_new_privs: execve can never grant privileges again.
//  3. Landlock: the lower layers readable, the upper and work directories
//     readable and writable, nothing else on the host filesystem; no TCP
//     bind or connect; no abstract unix sockets or signals outside the
//     server (landlock.go).
//  4. seccomp: a filter that allows only the system calls in syscalls.go,
//     the one list to re-check when the server's code changes.
//
// Each step is per thread in Linux. Go runs goroutines on many threads, so
// every step is made on all of them: seccomp and no_new_privs through
// SECCOMP_FILTER_FLAG_TSYNC, Landlock through LANDLOCK_RESTRICT_SELF_TSYNC
// where the kernel has it (Landlock ABI 8) and otherwise, like the
// capabilities, through syscall.AllThreadsSyscall. The latter exists only
// in binaries without cgo (`make build` sets CGO_ENABLED=0); a binary with
// cgo gets seccomp and no_new_privs and logs what it could not apply.
//
// Whatever the kernel lacks (no Landlock, an older Landlock ABI, no
// seccomp) is logged once at start and the rest still applies: the sandbox
// is defence in depth, the server's fd-relative, non-following host access
// is the first line.
//
// # A denied system call
//
// The filter answers a system call outside the list with EPERM (the
// errno action), it does not kill. A server serving many clients should
// fail the one request that met a gap in the list, not every client at
// once; and EPERM is an answer every code path already handles. The filter
// is installed with SECCOMP_FILTER_FLAG_LOG, so the kernel logs every
// denial: `dmesg | grep 'type=1326'` shows the system call number
// ("syscall=N") and the process. `--sandbox=log` keeps everything else but
// makes the filter allow and log instead of deny, to find what a new code
// path needs; `--sandbox=off` turns the sandbox off.
//
// # Tests
//
// probe_on.go, built only with -tags sandboxprobe (never by `make build`),
// holds two test hooks: Probe, which makes the confined server itself try
// to open a host file outside its layers, make sockets and execve
// (TestConfinement), and a launcher that confines itself as the server
// does and execs a test binary (TestWireSuiteConfined runs the whole p9srv
// suite that way). The VM suite and the torture test run the real binary,
// sandbox on.
package sandbox
