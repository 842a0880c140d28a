package qemu

import (
	"fmt"
	"strings"
)

// The guest's network to its unions: a virtio-net NIC on QEMU's user
// network (slirp) with restrict=on, which keeps every packet the guest
// sends inside the QEMU process: the only things the guest can reach are
// the guestfwd addresses below, each of which runs a courier that hands
// the connection to the union's server ([PassFD]). The guest's kernel
// then speaks 9P with trans=tcp directly: no relay process in the guest.
const (
	// ServerIP is the address in the guest's network at which the
	// unions answer, one TCP port each (BasePort, BasePort+1, ...).
	ServerIP = "10.0.2.100"
	// BasePort is the first union's port (9P's registered port).
	BasePort = 564
	// GuestIP and GuestPrefix are the address guest-mount gives the
	// NIC when it has none (slirp's default guest address).
	GuestIP     = "10.0.2.15"
	GuestPrefix = 24
	// NetMAC is the union NIC's MAC address, by which guest-mount finds
	// it among the guest's interfaces.
	NetMAC = "52:54:00:75:39:70"
	// FwCfgPrefix starts the fw_cfg file that tells the guest where
	// union NAME answers: opt/union9p/NAME holds "tcp:ADDR:PORT".
	FwCfgPrefix = "opt/union9p/"
	// fwCfgMaxName is QEMU's limit on fw_cfg file names (56 bytes with
	// the terminating NUL).
	fwCfgMaxName = 55
)

// NetUnion is one union offered on the guest's user network.
type NetUnion struct {
	// Name is the union's name; the guest finds its address in the
	// fw_cfg file opt/union9p/NAME.
	Name string
	// Courier is the command QEMU runs for each connection the guest
	// opens, with the connection on its stdin and stdout (argv; see
	// [PassFD]).
	Courier []string
}

// Addr returns the guest-side address of the i-th union: tcp:ADDR:PORT.
func Addr(i int) string { return fmt.Sprintf("tcp:%s:%d", ServerIP, BasePort+i) }

// CheckNetName reports whether name can be a fw_cfg file name under
// [FwCfgPrefix].
func CheckNetName(name string) error {
	switch {
	case name == "" || strings.ContainsAny(name, ",/ \t\n'\"\\"):
		return fmt.Errorf("union name %q: want a non-empty name without , / spaces or quotes", name)
	case len(FwCfgPrefix)+len(name) > fwCfgMaxName:
		return fmt.Errorf("union name %q: longer than %d bytes", name, fwCfgMaxName-len(FwCfgPrefix))
	}
	return nil
}

// NetArgs returns the QEMU arguments that give the guest one virtio-net
// NIC (MAC [NetMAC]) on a user network of its own with restrict=on, a
// guestfwd per union at [Addr](i) that runs the union's courier, and a
// fw_cfg file per union naming that address. It returns nil for no
// unions.
func NetArgs(unions []NetUnion) []string {
	if len(unions) == 0 {
		return nil
	}
	netdev := []string{"user", "id=union9p-net", "restrict=on", "ipv6=off"}
	var args []string
	for i, u := range unions {
		netdev = append(netdev, fmt.Sprintf("guestfwd=tcp:%s:%d-cmd:%s", ServerIP, BasePort+i, qemuEscape(shellQuote(u.Courier))))
		args = append(args, "-fw_cfg", fmt.Sprintf("name=%s%s,string=%s", FwCfgPrefix, u.Name, Addr(i)))
	}
	return append([]string{
		"-netdev", strings.Join(netdev, ","),
		"-device", "virtio-net-pci,netdev=union9p-net,mac=" + NetMAC,
	}, args...)
}

// shellQuote joins argv for g_shell_parse_argv, QEMU's parser of cmd:
// (POSIX shell quoting: each word in single quotes).
func shellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
