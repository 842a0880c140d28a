// Command bench measures union9p as users run it, side by side with peers
// measured in the same run on the same machine (see DESIGN.md,
// "Measuring"): the figures are ratios, because these machines are noisy.
//
//	go run ./test/bench            # as root; about six minutes (memory: ~4)
//	go run ./test/bench -h         # flags: rounds, duration, sections, ...
//
// Sections, in order (-sections picks some):
//
//   - servers: the union9p binary (`union9p serve`, two lowers and an
//     upper) against diod exporting one directory with the same merged
//     content, both on unix sockets, driven by test/p9wire sending what
//     the Linux v9fs client sends: Tstatfs (a null request), Twalk +
//     Tgetattr + Tclunk of a lower file, create + 4 KiB write + close,
//     a whole listing of a 10k-entry merged directory, and sequential
//     reads and writes at msize 64 KiB and 1 MiB (diod grants at most
//     64 KiB; the msize each server granted is printed). Each case runs
//     with 1 and 4 parallel connections. The create case runs again with
//     both servers' trees on a journaled ext4 loop image
//     (-create-journal), printed after the first table: on ext4 without
//     a journal creating an inode costs more the more inodes anyone freed
//     nearby in the last minutes (journal.go).
//   - layers: union9p over three lowers and an upper against union9p
//     over a single directory, on the metadata workloads.
//   - copyup: the first write to a 1 GiB lower file (open O_WRONLY, write
//     one byte, close) through union9p against the kernel's overlayfs, on
//     the bench directory's filesystem and on a reflink XFS loop image.
//   - syscalls: host syscalls per operation in each server process
//     (strace -c -f attached while a fixed number of operations run).
//   - memory: the server's live heap (after a full GC, in a server
//     process of its own) before, after 100,000 and after -memory-files
//     (1,000,000) walks and clunks of distinct lower files, and the
//     server's goroutines per idle connection (memory.go).
//
// Method: for every case the two servers alternate (a b, b a, ...) for
// -rounds timed rounds of -duration each after an untimed warm-up, and
// the median rate is reported with a noise figure (half the max-min
// spread of the rounds). Each round opens fresh connections and sets the
// workload up before the clock starts. Beside each rate go the median CPU
// time per operation (per MiB for sequential I/O) of the server process
// and of the bench's own client (cputime.go): they move less with the
// machine's load than rates do, and show when a case is bound by the
// client rather than by the server.
//
// A run keeps what it creates until it ends. On ext4 without a journal
// it first waits until the inodes the previous run freed (dated in
// DIR/.union9p-bench-freed) are no longer skipped by the allocator, at
// most a minute, and says so in its output (journal.go).
//
// The run is bounded (-timeout) and cleans up after itself on success,
// error or SIGINT/SIGTERM: server processes, overlayfs and XFS mounts,
// loop devices and the temporary trees (a second signal cleans up and
// exits at once). It needs root (mounts, whiteouts, diod attaching as
// uid 0), diod, strace and xfsprogs.
//
// bench_test.go has the same workloads as Go benchmarks with the server
// in process, for CPU and allocation profiles (see its comment).
package main
