// Command guest measures union9p from inside a Linux guest, against QEMU's
// own virtio-9p server, in one boot of a Debian kernel under QEMU
// (software emulation on our machines):
//
//   - union9p: `union9p qemu` serves a union, the content as the lower and
//     an empty upper, on a virtio-serial port; the guest mounts it with
//     `union9p guest-mount` (trans=fd through the guest-side relay);
//   - qemu-9p: QEMU's -virtfs (local, security_model=passthrough) exports
//     a plain directory with the same content; the guest mounts it with
//     mount -t 9p -o trans=virtio.
//
// Both mounts use the same 9p options (-cache, -msize). In the guest,
// test/bench/guest/inguest times busybox workloads on each, alternating
// between them (A B, then B A, ...): tar x of a tarball of the content
// (in the initramfs) into a new directory, find | xargs stat over the
// content, and dd write (conv=fsync) and read of -dd-mib MiB with bs=1M,
// dropping the guest's caches before every run. The host prints the
// median of the rounds for each side, the ratio (union9p speed over
// qemu-9p speed: above 1, union9p is faster) and an environment line.
//
// Usage (as root, from the repository):
//
//	go run ./test/bench/guest [-files 400] [-dd-mib 256] [-rounds 3] [-cache mmap|loose] [-union9p BINARY]
//
// A run takes three to four minutes. Emulation is slow (with cache=mmap, tar
// x and find | xargs stat cost about 0.1 s per file and round for both
// sides together), so the tree is scaled down by default from the
// issue's 20000 files to 400, and the output says so; -files 20000 runs
// the size, for about two hours. dd uses the 256 MiB.
// The run is bounded
// by -timeout (the guest powers itself off shortly before), and cleans up
// after itself on success, error or SIGINT/SIGTERM: QEMU, the union9p
// servers and the temporary directory (-keep keeps it, with the console
// log).
package main
