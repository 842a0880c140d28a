package qemu

import (
	"fmt"
	"strings"
)

// Machine describes a QEMU guest booted from a kernel and an initramfs,
// with the serial console on stdio.
type Machine struct {
	// Binary is the QEMU system emulator; default qemu-system-x86_64.
	Binary string
	// Kernel and Initrd are the paths of the vmlinuz and initramfs.
	Kernel, Initrd string
	// Append is added to the kernel command line after the console setup.
	Append string
	// MemoryMB is the guest's RAM; default 1024.
	MemoryMB int
	// CPUs is the number of virtual CPUs; default 1.
	CPUs int
	// Ports are virtio-serial ports to add (see [SerialPort]).
	Ports []SerialPort
	// Extra are more QEMU arguments, added last.
	Extra []string
}

// Args returns the QEMU command line, binary first. The guest has no
// network and no disks; it powers off with -no-reboot semantics, so a
// kernel panic ends QEMU instead of looping.
func (m Machine) Args() []string {
	bin := m.Binary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	mem := m.MemoryMB
	if mem == 0 {
		mem = 1024
	}
	cpus := m.CPUs
	if cpus == 0 {
		cpus = 1
	}
	args := []string{bin,
		"-nographic", "-no-reboot", "-nodefaults",
		"-serial", "stdio",
		"-m", fmt.Sprint(mem),
		"-smp", fmt.Sprint(cpus),
		"-nic", "none",
		"-kernel", m.Kernel,
		"-initrd", m.Initrd,
		"-append", strings.TrimSpace("console=ttyS0 panic=-1 quiet loglevel=3 " + m.Append),
	}
	args = append(args, SerialArgs(m.Ports)...)
	return append(args, m.Extra...)
}
