package qemu

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The guest side of the user network (see [NetArgs]): finding a union's
// address and bringing the NIC up without DHCP.

// fwCfgDir is where the guest's qemu_fw_cfg module shows fw_cfg files.
const fwCfgDir = "/sys/firmware/qemu_fw_cfg/by_name"

// LookupNet returns the address ("tcp:ADDR:PORT") at which the host
// serves union name, from the fw_cfg file that `union9p qemu` adds
// (needs the qemu_fw_cfg module). It waits up to wait for the file to
// appear, as the module may still be probing; os.ErrNotExist means the
// union is not offered on the network.
func LookupNet(name string, wait time.Duration) (string, error) {
	name = strings.TrimPrefix(name, PortPrefix)
	if CheckNetName(name) != nil {
		return "", fmt.Errorf("union %q: %w", name, os.ErrNotExist)
	}
	p := filepath.Join(fwCfgDir, FwCfgPrefix+name, "raw")
	deadline := time.Now().Add(wait)
	for {
		b, err := os.ReadFile(p)
		if err == nil {
			return strings.TrimSpace(string(b)), nil
		}
		if !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return "", fmt.Errorf("union %q on the network: %w", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FwCfgProbed reports whether the guest's qemu_fw_cfg module has listed
// the fw_cfg files: from then on, a union missing there is not offered
// on the network.
func FwCfgProbed() bool {
	_, err := os.Stat(fwCfgDir)
	return err == nil
}

// ParseTCP splits "tcp:ADDR:PORT" (or "ADDR:PORT") into an IPv4 address
// and a port.
func ParseTCP(spec string) (net.IP, int, error) {
	host, port, err := net.SplitHostPort(strings.TrimPrefix(spec, "tcp:"))
	if err != nil {
		return nil, 0, fmt.Errorf("%q: want tcp:ADDR:PORT: %w", spec, err)
	}
	ip := net.ParseIP(host).To4()
	n, err := strconv.Atoi(port)
	if ip == nil || err != nil || n < 1 || n > 65535 {
		return nil, 0, fmt.Errorf("%q: want tcp:IPv4:PORT", spec)
	}
	return ip, n, nil
}

// SetupNet brings up the union NIC (the interface with MAC [NetMAC]) and,
// if it has no IPv4 address yet, gives it [GuestIP]/[GuestPrefix]: no
// DHCP client is needed. The route to [ServerIP] follows from the
// address. It waits up to wait for the interface to appear (virtio_net
// probing). Setting up an interface that is already up is harmless, so
// several guest-mounts may each call it.
func SetupNet(wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	var ifname string
	for {
		var err error
		if ifname, err = interfaceByMAC(NetMAC); err == nil {
			break
		} else if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(50 * time.Millisecond)
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("set up %s: %w", ifname, err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return "", err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFADDR, ifr); err == nil {
		// Already addressed (by us earlier, or by the guest's own
		// network setup): only make sure it is up.
	} else {
		ifr, _ = unix.NewIfreq(ifname)
		if err := ifr.SetInet4Addr(net.ParseIP(GuestIP).To4()); err != nil {
			return "", err
		}
		if err := unix.IoctlIfreq(s, unix.SIOCSIFADDR, ifr); err != nil {
			return "", fmt.Errorf("set up %s: address %s: %w", ifname, GuestIP, err)
		}
		ifr, _ = unix.NewIfreq(ifname)
		if err := ifr.SetInet4Addr(net.IP(net.CIDRMask(GuestPrefix, 32))); err != nil {
			return "", err
		}
		if err := unix.IoctlIfreq(s, unix.SIOCSIFNETMASK, ifr); err != nil {
			return "", fmt.Errorf("set up %s: netmask: %w", ifname, err)
		}
	}
	ifr, _ = unix.NewIfreq(ifname)
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return "", fmt.Errorf("set up %s: flags: %w", ifname, err)
	}
	if flags := ifr.Uint16(); flags&unix.IFF_UP == 0 {
		ifr.SetUint16(flags | unix.IFF_UP)
		if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
			return "", fmt.Errorf("set up %s: up: %w", ifname, err)
		}
	}
	return ifname, nil
}

// interfaceByMAC returns the name of the interface with hardware address
// mac, from /sys/class/net.
func interfaceByMAC(mac string) (string, error) {
	dirs, _ := filepath.Glob("/sys/class/net/*/address")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err == nil && strings.EqualFold(strings.TrimSpace(string(b)), mac) {
			return filepath.Base(filepath.Dir(d)), nil
		}
	}
	return "", fmt.Errorf("no network interface with MAC %s (is virtio_net loaded, and the guest started by union9p qemu?): %w", mac, os.ErrNotExist)
}

// DialTCP connects to ip:port with Nagle's algorithm off and returns the
// socket as a blocking file for the kernel's trans=fd (see guest-mount).
func DialTCP(ip net.IP, port int) (*os.File, error) {
	c, err := net.DialTCP("tcp", nil, &net.TCPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, fmt.Errorf("connect to %s:%d: %w", ip, port, err)
	}
	defer c.Close()
	if err := c.SetNoDelay(true); err != nil {
		return nil, err
	}
	f, err := c.File() // a dup, in blocking mode
	if err != nil {
		return nil, fmt.Errorf("connect to %s:%d: %w", ip, port, err)
	}
	return f, nil
}
