package qemu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// OpenPort opens the guest end of a transport to a 9P server:
//
//   - vsock:PORT or vsock:CID:PORT connects a vsock stream socket (CID
//     defaults to 2, the host);
//   - a spec containing '/' is opened as a path (e.g. /dev/vport0p1);
//   - anything else is a virtio-serial port name, looked up as
//     /dev/virtio-ports/NAME (made by udev) or, without udev, in
//     /sys/class/virtio-ports/*/name; "NAME" also finds "union9p.NAME".
//
// Devices appear shortly after virtio_console loads, so OpenPort waits up
// to wait for the port to show up.
func OpenPort(spec string, wait time.Duration) (*os.File, error) {
	if rest, ok := strings.CutPrefix(spec, "vsock:"); ok {
		return dialVsock(rest)
	}
	deadline := time.Now().Add(wait)
	for {
		path, err := findPort(spec)
		if err == nil {
			f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
			if err != nil {
				return nil, fmt.Errorf("open port %s: %w", spec, err)
			}
			return f, nil
		}
		if !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return nil, fmt.Errorf("port %s: %w", spec, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PortExists reports whether the virtio-serial port spec (a name or a
// path, as for [OpenPort]) is there now.
func PortExists(spec string) bool {
	_, err := findPort(spec)
	return err == nil
}

// findPort resolves a port spec to a device path.
func findPort(spec string) (string, error) {
	if strings.Contains(spec, "/") {
		_, err := os.Stat(spec)
		return spec, err
	}
	names := []string{spec}
	if !strings.HasPrefix(spec, PortPrefix) {
		names = append(names, PortPrefix+spec)
	}
	for _, n := range names {
		p := filepath.Join("/dev/virtio-ports", n)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	dirs, _ := filepath.Glob("/sys/class/virtio-ports/*")
	for _, n := range names {
		for _, d := range dirs {
			b, err := os.ReadFile(filepath.Join(d, "name"))
			if err == nil && strings.TrimSpace(string(b)) == n {
				p := filepath.Join("/dev", filepath.Base(d))
				_, err := os.Stat(p)
				return p, err
			}
		}
	}
	return "", fmt.Errorf("no virtio-serial port named %q: %w", spec, os.ErrNotExist)
}

// dialVsock connects to [CID:]PORT over AF_VSOCK.
func dialVsock(addr string) (*os.File, error) {
	cid, port := uint64(unix.VMADDR_CID_HOST), addr
	if c, p, ok := strings.Cut(addr, ":"); ok {
		var err error
		if cid, err = strconv.ParseUint(c, 10, 32); err != nil {
			return nil, fmt.Errorf("vsock:%s: bad CID: %w", addr, err)
		}
		port = p
	}
	pn, err := strconv.ParseUint(port, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("vsock:%s: bad port: %w", addr, err)
	}
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vsock:%s: %w", addr, err)
	}
	if err := unix.Connect(fd, &unix.SockaddrVM{CID: uint32(cid), Port: uint32(pn)}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vsock:%s: connect: %w", addr, err)
	}
	return os.NewFile(uintptr(fd), "vsock:"+addr), nil
}
