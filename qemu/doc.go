// Package qemu wires QEMU guests to a union9p server and builds the small
// Linux guests that the real-kernel tests boot.
//
// The host kernel on our machines has no 9p module, so the only Linux 9p
// client we can test against runs inside a guest under QEMU (software
// emulation: a boot takes a few seconds). Three pieces live here:
//
//   - The guest image: Debian's stock kernel package (fetched with
//     apt-get download and cached outside the repository, see [Cache] and
//     [FetchKernel]), the 9p-related modules picked out of it with their
//     dependencies in load order ([Modules]), and an initramfs (cpio newc,
//     gzip; [Initramfs]) holding busybox-static, our static binaries and a
//     tiny init script ([InitScript]).
//   - The host side of the transports. Default, tcp: a virtio-net NIC
//     on a QEMU user network with restrict=on ([NetArgs]), whose
//     guestfwd address per union runs a courier that hands the guest's
//     connection to the union's server over a pass socket ([PassFD],
//     [ListenPassed]); a fw_cfg file per union tells the guest its
//     address. tap (root): the same NIC on a tap device in a network
//     namespace of its own ([NewTap], [TapArgs]). serial: a
//     virtio-serial port whose host end is a unix socket the server
//     listens on ([SerialPort]). [Machine] assembles a QEMU command line.
//   - The guest side. tcp/tap: find the union's address ([LookupNet]),
//     bring the NIC up with a static address ([SetupNet]), connect
//     ([DialTCP], TCP_NODELAY) and mount the socket with trans=fd
//     ([NinePData], [MountFD]): the kernel then talks to the server with
//     no process in between. serial: the kernel's trans=fd cannot write
//     to a virtio-serial port ("kernel write not supported"), so the
//     guest helper opens the port ([OpenPort]), makes a socketpair,
//     relays bytes between the port and one end ([Relay],
//     [SpliceRelay]) and mounts the other end. The relay must outlive
//     the mount; it ends when the kernel drops its end of the
//     socketpair at unmount.
//
// Nothing here knows about union rules: the server is a separate process
// or a p9srv.Server the caller starts.
package qemu
