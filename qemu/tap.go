package qemu

import (
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// The tap transport (union9p qemu --transport tap, root only): the guest's
// union NIC is a tap device in a network namespace made for this guest
// alone, holding nothing but that tap and a loopback; the unions listen
// on ServerIP in it. The guest's TCP then meets the host kernel's TCP
// directly, with the virtio-net offloads (64 KiB segments, no checksums
// in the guest) and a 64 KiB MTU, instead of QEMU's user network, which
// takes 1460-byte segments one at a time. Nothing the guest sends can
// leave the namespace: it has no other interface and no route.

// TapMTU is the union NIC's MTU on the tap transport.
const TapMTU = 65520

// Tap is the host side of the tap transport.
type Tap struct {
	// Dev is the tap device (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR), for QEMU's
	// -netdev tap,fd=N.
	Dev *os.File
	// Listeners are listening TCP sockets on ServerIP:BasePort+i, one
	// per union, for `union9p serve --listen fd:N`.
	Listeners []*os.File
}

// Close closes the descriptors; the namespace goes with the last one.
func (t *Tap) Close() {
	if t.Dev != nil {
		t.Dev.Close()
	}
	for _, l := range t.Listeners {
		l.Close()
	}
}

// NewTap makes the namespace, the tap device in it (address ServerIP,
// up) and n listening sockets. It needs CAP_NET_ADMIN and CAP_SYS_ADMIN.
func NewTap(n int) (*Tap, error) {
	type result struct {
		t   *Tap
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread enters the new namespace and is never unlocked:
		// Go ends it with this goroutine, so no other goroutine ever
		// runs in the namespace. Sockets and the tap keep it alive.
		runtime.LockOSThread()
		t, err := newTapHere(n)
		ch <- result{t, err}
	}()
	r := <-ch
	return r.t, r.err
}

func newTapHere(n int) (t *Tap, err error) {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("tap: new network namespace: %w", err)
	}
	t = &Tap{}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	ctl, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(ctl)
	if err := ifUp(ctl, "lo"); err != nil {
		return nil, err
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("tap: %w", err)
	}
	t.Dev = os.NewFile(uintptr(fd), "tap")
	ifr, _ := unix.NewIfreq("u9tap0")
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return nil, fmt.Errorf("tap: TUNSETIFF: %w", err)
	}
	name := ifr.Name()
	// The offloads the guest may use; QEMU sets them again as the guest
	// negotiates.
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETOFFLOAD,
		uintptr(unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6|unix.TUN_F_TSO_ECN)); e != 0 {
		return nil, fmt.Errorf("tap: TUNSETOFFLOAD: %w", e)
	}
	ifr, _ = unix.NewIfreq(name)
	ifr.SetInet4Addr(net.ParseIP(ServerIP).To4())
	if err := unix.IoctlIfreq(ctl, unix.SIOCSIFADDR, ifr); err != nil {
		return nil, fmt.Errorf("tap: address: %w", err)
	}
	ifr, _ = unix.NewIfreq(name)
	ifr.SetInet4Addr(net.IP(net.CIDRMask(GuestPrefix, 32)))
	if err := unix.IoctlIfreq(ctl, unix.SIOCSIFNETMASK, ifr); err != nil {
		return nil, fmt.Errorf("tap: netmask: %w", err)
	}
	ifr, _ = unix.NewIfreq(name)
	ifr.SetUint32(TapMTU)
	if err := unix.IoctlIfreq(ctl, unix.SIOCSIFMTU, ifr); err != nil {
		return nil, fmt.Errorf("tap: mtu: %w", err)
	}
	if err := ifUp(ctl, name); err != nil {
		return nil, err
	}
	for i := range n {
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		l := os.NewFile(uintptr(s), fmt.Sprintf("tcp:%s:%d", ServerIP, BasePort+i))
		t.Listeners = append(t.Listeners, l)
		unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		var addr [4]byte
		copy(addr[:], net.ParseIP(ServerIP).To4())
		if err := unix.Bind(s, &unix.SockaddrInet4{Port: BasePort + i, Addr: addr}); err != nil {
			return nil, fmt.Errorf("tap: bind %s:%d: %w", ServerIP, BasePort+i, err)
		}
		if err := unix.Listen(s, 64); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// ifUp sets IFF_UP on the interface name.
func ifUp(ctl int, name string) error {
	ifr, _ := unix.NewIfreq(name)
	if err := unix.IoctlIfreq(ctl, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: flags: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(ctl, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: up: %w", name, err)
	}
	return nil
}

// TapArgs returns the QEMU arguments for the tap transport: the union NIC
// on the tap that QEMU has as descriptor fd (with the virtio-net header,
// so the guest may offload), a 64 KiB MTU, and a fw_cfg file per union
// naming its address, as [NetArgs] does.
func TapArgs(fd int, names []string) []string {
	args := []string{
		"-netdev", fmt.Sprintf("tap,id=union9p-net,fd=%d,vhost=off", fd),
		"-device", fmt.Sprintf("virtio-net-pci,netdev=union9p-net,mac=%s,host_mtu=%d", NetMAC, TapMTU),
	}
	for i, n := range names {
		args = append(args, "-fw_cfg", fmt.Sprintf("name=%s%s,string=%s", FwCfgPrefix, n, Addr(i)))
	}
	return args
}
