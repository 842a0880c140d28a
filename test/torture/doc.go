// Package torture checks what union9p promises across crashes of the
// server: a client runs a random mixed workload (create, write, fsync,
// rename of files and directories, unlink, rmdir, copy-ups of large and
// small lower files, directory copy-ups, xattrs) while `union9p serve` is
// killed with SIGKILL at a random moment; the server is restarted and:
//
//   - the lower layers are byte- and metadata-identical to before;
//   - the work directory holds no leftovers;
//   - every file whose fsync was answered has its data;
//   - no object is half-made (a copy-up is all or nothing: a copied-up
//     large file has all of its lower data and owner);
//   - the kernel's overlayfs, mounting the layers read-only, shows the same
//     tree as union9p serves.
//
// `go test ./test/torture` runs a few kill points (CI);
// UNION9P_TORTURE_KILLS=N runs N (`make torture`: 1000). The server runs
// as built by `make build`, with its sandbox on.
package torture
