package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Packet counts of the union NIC, to show where the time of the tcp
// sides goes: every frame is emulated work in the guest (its TCP stack,
// checksums without offloads) and in QEMU (the device, the user
// network's own TCP), so frames per MiB say more than the MiB/s alone.

// unionNICMAC is the NIC union9p qemu adds (qemu.NetMAC).
const unionNICMAC = "52:54:00:75:39:70"

// nicCounts returns the union NIC's transmitted and received packets, or
// ok false when the guest has no such NIC.
func nicCounts() (tx, rx uint64, ok bool) {
	dirs, _ := filepath.Glob("/sys/class/net/*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "address"))
		if err != nil || strings.TrimSpace(string(b)) != unionNICMAC {
			continue
		}
		read := func(name string) uint64 {
			b, _ := os.ReadFile(filepath.Join(d, "statistics", name))
			n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
			return n
		}
		return read("tx_packets"), read("rx_packets"), true
	}
	return 0, 0, false
}

// packetNote formats the packets a run moved, for an info record.
func packetNote(tx0, rx0, tx1, rx1 uint64) string {
	return fmt.Sprintf("guest sent %d and received %d frames", tx1-tx0, rx1-rx0)
}
