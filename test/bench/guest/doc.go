// Command guest measures, from inside a Linux guest, every way the guest
// can reach a union served by union9p on the host, against QEMU's own
// virtio-9p server, in one boot of a Debian kernel under QEMU (software
// emulation on our machines). The sides (internal/record.Sides):
//
//   - virtiofs: a fourth union over the virtiofs transport (`union9p qemu
//     --virtiofs`): union9p as a vhost-user-fs device, guest-mount
//     virtiofs:NAME (mount -t virtiofs);
//   - virtfs: a third union over the virtfs transport (`union9p qemu
//     --virtfs`): QEMU's -virtfs (passthrough) of union9p's FUSE frontend
//     on a detached host mount, guest-mount virtfs:NAME, cache=mmap,
//     msize 512000;
//   - tcp (the default path of `union9p qemu` and guest-mount): a
//     virtio-net NIC on QEMU's user network with restrict=on; guest-mount
//     connects to the union's guestfwd address (a courier hands the
//     connection to the server) and gives the socket to the kernel;
//     tcp-kernel lets the kernel connect (trans=tcp), tcp-512k asks for
//     msize=512000, tcp-loose mounts with cache=loose;
//   - relay and relay-splice: a virtio-serial port, guest-mount's relay
//     (read/write, or splice(2) towards the host) and trans=fd;
//   - qemu-9p and qemu-9p-loose: QEMU's -virtfs (local,
//     security_model=passthrough) of a plain directory with the same
//     content, trans=virtio, cache=mmap or loose;
//   - fuse-overlayfs: QEMU's -virtfs (the same options as qemu-9p) of a
//     fuse-overlayfs mount on the host over the union's lower with an
//     upper of its own: QEMU's zero-copy virtio-9p in front of a FUSE
//     union server, measured before union9p had a FUSE frontend of its
//     own (fuseoverlay.go);
//   - 9p-overlay: that export mounted read-only as the lower of the
//     guest's own overlayfs with a tmpfs upper (what a user would build
//     without union9p; its writes stay in guest RAM).
//
// In the guest, test/bench/guest/inguest mounts every side at once and
// times busybox workloads on each, alternating the order every round (A
// B C, then C B A): tar x of a tarball of the content (in the initramfs)
// into a new directory, find | xargs stat over the content, dd write
// (conv=fsync) and read of -dd-mib MiB with bs=1M, and dd read of a file
// of that size in the content (the lower), dropping the guest's caches
// before every run. The host prints each side's median, its ratio to
// qemu-9p (above 1: faster) and the noise, and an environment line.
// For the first round it also prints, per side and workload, the guest's
// CPU use and interrupt count (inguest/cpu.go) and, for the tcp sides,
// the frames on the union NIC: where the time goes.
//
// Usage (as root, from the repository):
//
//	go run ./test/bench/guest [-files 100] [-dd-mib 32] [-rounds 3] [-sides tcp,qemu-9p,...] [-union9p BINARY]
//
// Emulation is slow (find | xargs stat alone costs up to 0.1 s a file on
// the slowest sides), so the tree is scaled down by default from the
// benchmark issue's 20000 files and 256 MiB to 100 files and 32 MiB, and
// the output says so.
// The run is bounded by -timeout (the guest powers itself off shortly
// before), and cleans up after itself on success, error or
// SIGINT/SIGTERM: QEMU, the union9p servers and the temporary directory
// (-keep keeps it, with the console log).
package main
