package qemu

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultMsize is the 9P message size asked for when the options give
// none. The server may negotiate it down.
const DefaultMsize = 512 * 1024

// mountFlags maps mount(8)'s generic options to mount(2) flags.
var mountFlags = map[string]struct {
	set   bool
	flags uintptr
}{
	"ro":          {true, unix.MS_RDONLY},
	"rw":          {false, unix.MS_RDONLY},
	"nosuid":      {true, unix.MS_NOSUID},
	"suid":        {false, unix.MS_NOSUID},
	"nodev":       {true, unix.MS_NODEV},
	"dev":         {false, unix.MS_NODEV},
	"noexec":      {true, unix.MS_NOEXEC},
	"exec":        {false, unix.MS_NOEXEC},
	"sync":        {true, unix.MS_SYNCHRONOUS},
	"async":       {false, unix.MS_SYNCHRONOUS},
	"dirsync":     {true, unix.MS_DIRSYNC},
	"noatime":     {true, unix.MS_NOATIME},
	"atime":       {false, unix.MS_NOATIME},
	"nodiratime":  {true, unix.MS_NODIRATIME},
	"diratime":    {false, unix.MS_NODIRATIME},
	"relatime":    {true, unix.MS_RELATIME},
	"norelatime":  {false, unix.MS_RELATIME},
	"strictatime": {true, unix.MS_STRICTATIME},
	"lazytime":    {true, unix.MS_LAZYTIME},
	"silent":      {true, unix.MS_SILENT},
	"defaults":    {false, 0},
}

// SplitMountOptions separates mount(8)'s generic options (ro, nosuid,
// noatime, ...) from file-system-specific ones, which are returned in
// order for the 9p data string.
func SplitMountOptions(opts []string) (flags uintptr, rest []string) {
	for _, o := range opts {
		if o == "" {
			continue
		}
		if f, ok := mountFlags[o]; ok {
			if f.set {
				flags |= f.flags
			} else {
				flags &^= f.flags
			}
			continue
		}
		rest = append(rest, o)
	}
	return flags, rest
}

// NinePData returns the data string for mount -t 9p over file descriptor
// fd with trans=fd: version=9p2000.L and msize=[DefaultMsize] unless opts
// say otherwise, then opts. Options that would point the kernel elsewhere
// (trans, rfdno, wfdno, port) are refused.
func NinePData(fd int, opts []string) (string, error) {
	return ninePData([]string{"trans=fd", fmt.Sprintf("rfdno=%d", fd), fmt.Sprintf("wfdno=%d", fd)}, DefaultMsize, opts)
}

// DefaultTCPMsize is the msize asked for over a TCP connection: the
// largest the kernel's socket transports (tcp, fd) take (1 MiB in Linux
// 6.1), so that a 1 MiB read or write is one request.
const DefaultTCPMsize = 1 << 20

// NinePTCPData returns the data string for mount -t 9p ADDR with
// trans=tcp to port: version=9p2000.L and msize=[DefaultTCPMsize] unless
// opts say otherwise, then opts. Options that would point the kernel
// elsewhere are refused, as in [NinePData].
func NinePTCPData(port int, opts []string) (string, error) {
	return ninePData([]string{"trans=tcp", fmt.Sprintf("port=%d", port)}, DefaultTCPMsize, opts)
}

func ninePData(transport []string, msize int, opts []string) (string, error) {
	have := map[string]bool{}
	for _, o := range opts {
		k, _, _ := strings.Cut(o, "=")
		switch k {
		case "trans", "rfdno", "wfdno", "port":
			return "", fmt.Errorf("9p option %q is set by union9p", o)
		}
		have[k] = true
	}
	parts := transport
	if !have["version"] {
		parts = append(parts, "version=9p2000.L")
	}
	if !have["msize"] {
		parts = append(parts, fmt.Sprintf("msize=%d", msize))
	}
	return strings.Join(append(parts, opts...), ","), nil
}

// MountFD mounts the 9P server at the other end of fd (one end of a
// socketpair or any stream the kernel can read and write) on dir. The
// kernel takes its own reference to fd during the call: the caller may
// close fd afterwards, and must do so for the server to see the end of
// the connection at unmount. data comes from [NinePData].
func MountFD(source, dir string, flags uintptr, data string) error {
	if err := unix.Mount(source, dir, "9p", flags, data); err != nil {
		return fmt.Errorf("mount -t 9p %s on %s (-o %s): %w", source, dir, data, err)
	}
	return nil
}
