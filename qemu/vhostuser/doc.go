// Package vhostuser is the device side of a vhost-user virtio device:
// QEMU connects to a unix socket, hands over the guest's RAM (memfd
// regions, mapped here) and the virtqueues' addresses and eventfds, and
// from then on the guest's requests are read from and answered in guest
// memory directly, with no copy through QEMU.
//
// The subset implemented is what QEMU 7.2's vhost-user-fs-pci needs
// (msg.go, device.go): features, owner, memory table, vring setup,
// start, stop and enable. Queues are split virtqueues (vring.go) with
// indirect descriptors; no event index, no packed rings, no log (no
// migration), no polling mode.
//
// The guest is hostile. Every descriptor address and length is checked
// against the mapped regions before it becomes a slice (memory.go), a
// chain is bounded by the queue size and by a byte limit (loops end
// there), an indirect table is checked the same way and may not nest.
// A bad chain fails that request: it is returned to the guest with
// nothing written, or, if the ring itself is broken (an index outside
// the ring, a head outside the table), the queue stops and the device
// logs why; other queues, devices and QEMU processes are unaffected.
// A message from QEMU that the device cannot follow ends the connection.
//
// A Keeper (keeper.go) splits the device in two processes: it holds
// QEMU's connection and the state QEMU set up, and hands that state to
// a worker process running a Device, again each time a worker dies;
// the worker logs the requests it has in flight in memory the keeper
// owns (inflight.go), so the next one answers them as lost instead of
// leaving the guest waiting. QEMU's vhost-user-fs cannot reconnect a
// back end, so this is what lets the serving process be restarted.
//
// Concurrency: one goroutine reads QEMU's messages (Device.Serve); one
// goroutine per started queue waits for kicks and pops chains; each
// chain is handled on a goroutine of its own (bounded per queue) and
// pushed to the used ring under the queue's lock. Guest memory is
// mapped and unmapped only while no request holds it (Device.memMu).
package vhostuser
