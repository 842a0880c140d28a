// Package difftest holds integration tests that hold package union to the
// reference it imitates, the kernel's overlayfs. It has no code of its own
// outside its tests.
//
// The tests need root (mknod for whiteouts, trusted.* xattrs, mount) and
// a kernel with overlayfs; without either they skip and say why.
//
//   - differential_test.go: randomized operation sequences run through
//     union and through a kernel overlay mount of identical copies of the
//     same generated layers; every result (errno included) and the merged
//     trees must agree, and the lower layers must be unchanged. Each seed
//     runs twice: walking every path from the root, and keeping directory
//     handles across operations as a 9P client keeps fids.
//   - upperformat_test.go: an upper written by union is mounted by the
//     kernel and must show the same tree, and the reverse.
//   - hostile_test.go: symlinks pointing out of the layers, directories
//     and files swapped for symlinks under a held Node, bad names, private
//     xattrs, name calls on non-directories.
//   - fuzz_test.go: FuzzUnionOps, the differential test as a fuzz target
//     (the input drives the operation generator); `make fuzz` runs it.
//   - harness_test.go: tests of the harness itself (determinism, coverage
//     of the generator, the shrinker, and that a planted difference is
//     seen).
//
// The other files are the helpers these share: layer generation
// (layers_test.go), snapshots of host trees (snapshot_test.go), the kernel
// mount (overlay_test.go), the two file systems under test behind one
// interface (fsys_test.go, unionfs_test.go, kernelfs_test.go), operations
// and their generator (ops_test.go), merged-tree capture and comparison
// (tree_test.go), one run's directories (diffenv_test.go), the shrinker for
// failing sequences (minimize_test.go), and TestMain (main_test.go), which
// clears the umask.
//
// What is compared, and what is not: errnos exactly; modes, owners, sizes
// and link counts of non-directories; whether an mtime is still the one
// the layers were made with; contents, link targets, all xattrs a client
// can list; listings with d_type. Not inode numbers, atime, ctime, nor a
// directory's size and link count (overlayfs reports 1 for merged ones).
// Operations a client's VFS never sends to its server (read of a
// directory, readlink of a file, user.* xattrs on a symlink, anything that
// follows a symlink) are not compared; see op.appliesTo. overlayfs lists
// a whiteout in a directory that is not merged; the kernel side drops such
// entries (union hides every marker by design).
//
// Environment variables:
//
//	UNION9P_DIFF_SEEDS=N      run seeds 1..N instead of the fixed 1..24
//	UNION9P_DIFF_SEED=S       run only seed S (to replay a failure)
//	UNION9P_DIFF_OPS=N        operations per seed (default 200)
//	UNION9P_DIFF_MINIMIZE=1   on a divergence, shrink the operation
//	                          sequence to a minimal one and log it
package difftest
