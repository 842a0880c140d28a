package qemu

import (
	"fmt"
	"strings"
)

// PortPrefix starts the name of every virtio-serial port that carries a
// union, so that a guest can tell them from other ports: union9p.NAME.
const PortPrefix = "union9p."

// SerialPort is one virtio-serial port whose host end is a unix socket that
// a 9P server listens on; QEMU connects to it as a client when it starts
// (and reconnects if the server restarts).
type SerialPort struct {
	// Name is the port name the guest sees (in
	// /sys/class/virtio-ports/*/name, and /dev/virtio-ports/NAME where
	// udev runs), e.g. union9p.root.
	Name string
	// Socket is the path of the server's unix socket.
	Socket string
}

// SerialArgs returns the QEMU arguments that add one virtio-serial
// controller and a port per entry. It returns nil for no ports.
func SerialArgs(ports []SerialPort) []string {
	if len(ports) == 0 {
		return nil
	}
	args := []string{"-device", "virtio-serial-pci,id=union9p-vser"}
	for i, p := range ports {
		id := fmt.Sprintf("union9p%d", i)
		args = append(args,
			"-chardev", fmt.Sprintf("socket,id=%s,path=%s,reconnect=1", id, qemuEscape(p.Socket)),
			"-device", fmt.Sprintf("virtserialport,bus=union9p-vser.0,nr=%d,chardev=%s,name=%s", i+1, id, qemuEscape(p.Name)),
		)
	}
	return args
}

// qemuEscape doubles commas, QEMU's escape inside option values.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }
