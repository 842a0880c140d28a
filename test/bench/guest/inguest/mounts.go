package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/union9p/union9p/test/bench/guest/internal/record"
	"github.com/union9p/union9p/test/internal/guestutil"
	"golang.org/x/sys/unix"
)

// side is one of the mounts that are compared (record.Sides).
type side struct {
	name    string
	dir     string // mount point
	doMount func() error
	// helper, if set, is a word in the command line of a process that
	// serves the mount from the guest and must exit after the unmount
	// (union9p's relay).
	helper  string
	undo    func() error // after the unmount (the overlay's lower)
	mounted bool
}

// newSide returns the side with key name (see record.Sides).
func newSide(cfg config, name string) (*side, error) {
	s := &side{name: name, dir: "/mnt/" + name}
	guestMount := func(spec string, opts string, extra ...string) func() error {
		return func() error {
			args := append([]string{"guest-mount", "-o", opts}, extra...)
			return guestutil.Command("/bin/union9p", append(args, spec, s.dir)...)
		}
	}
	virtfs := func(tag, opts string) func() error {
		return func() error { return mount9p(tag, s.dir, opts) }
	}
	mmap512 := fmt.Sprintf("cache=mmap,msize=%d", cfg.Msize)
	switch name {
	case record.SideVirtiofs:
		s.doMount = guestMount("virtiofs:"+cfg.VioUnion, "")
	case record.SideVirtfs:
		s.doMount = guestMount("virtfs:"+cfg.VirtfsUnion, mmap512)
	case record.SideTCP:
		s.doMount = guestMount(cfg.Union, "cache=mmap")
	case "tcp-kernel":
		s.doMount = guestMount(cfg.Union, "cache=mmap", "--kernel-tcp")
	case "tcp-512k":
		s.doMount = guestMount(cfg.Union, mmap512)
	case "tcp-loose":
		s.doMount = guestMount(cfg.Union, "cache=loose")
	case "relay":
		s.helper = "guest-relay --splice=false"
		s.doMount = guestMount("serial:"+cfg.Union, mmap512)
	case "relay-splice":
		s.helper = "guest-relay --splice=true"
		s.doMount = guestMount("serial:"+cfg.SpliceUnion, mmap512, "--relay", "splice")
	case record.SideReference:
		s.doMount = virtfs(cfg.Tag, mmap512)
	case record.SideFuseOverlayfs:
		s.doMount = virtfs(cfg.Tag+"fuse", mmap512)
	case "qemu-9p-loose":
		s.doMount = virtfs(cfg.Tag+"loose", fmt.Sprintf("cache=loose,msize=%d", cfg.Msize))
	case "9p-overlay":
		lower, rw := "/mnt/9p-lower", "/tmp/9p-overlay"
		s.doMount = func() error {
			for _, d := range []string{lower, rw} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					return err
				}
			}
			if err := mount9p(cfg.Tag+"lower", lower, mmap512+",ro"); err != nil {
				return err
			}
			if err := unix.Mount("tmpfs", rw, "tmpfs", 0, "mode=0755"); err != nil {
				return fmt.Errorf("mount tmpfs %s: %w", rw, err)
			}
			for _, d := range []string{rw + "/upper", rw + "/work"} {
				if err := os.Mkdir(d, 0o755); err != nil {
					return err
				}
			}
			opts := "lowerdir=" + lower + ",upperdir=" + rw + "/upper,workdir=" + rw + "/work"
			if err := unix.Mount("overlay", s.dir, "overlay", 0, opts); err != nil {
				return fmt.Errorf("mount -t overlay -o %s: %w", opts, err)
			}
			return nil
		}
		s.undo = func() error {
			if err := unix.Unmount(rw, 0); err != nil {
				return err
			}
			return unix.Unmount(lower, 0)
		}
	default:
		return nil, fmt.Errorf("unknown side %q", name)
	}
	return s, nil
}

// mount9p mounts QEMU's virtfs share tag on dir with the virtio
// transport.
func mount9p(tag, dir, opts string) error {
	data := "trans=virtio,version=9p2000.L," + opts
	flags := uintptr(0)
	if strings.HasSuffix(opts, ",ro") {
		flags, data = unix.MS_RDONLY, strings.TrimSuffix(data, ",ro")
	}
	if err := unix.Mount(tag, dir, "9p", flags, data); err != nil {
		return fmt.Errorf("mount -t 9p -o %s %s %s: %w", data, tag, dir, err)
	}
	return nil
}

func (s *side) mount() error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	if err := s.doMount(); err != nil {
		return err
	}
	s.mounted = true
	return nil
}

// unmount unmounts the side (once) and waits for its helper to exit.
func (s *side) unmount() error {
	if !s.mounted {
		return nil
	}
	s.mounted = false
	if err := guestutil.UnmountAndWait(s.dir, s.helper); err != nil {
		return err
	}
	if s.undo != nil {
		return s.undo()
	}
	return nil
}

// mountInfo returns the side's line of /proc/mounts: source, type and
// the options the kernel settled on (msize, cache, ...).
func (s *side) mountInfo() string {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 4 && fields[1] == s.dir {
			return fields[0] + " " + fields[2] + " " + fields[3]
		}
	}
	return "not in /proc/mounts"
}

// countEntries returns how many paths find lists under dir on s, the
// tree's root included: both sides must show the same content.
func countEntries(s *side, dir string) (int, error) {
	out, err := exec.Command("find", filepath.Join(s.dir, dir)).Output()
	if err != nil {
		return 0, fmt.Errorf("find %s: %w", dir, err)
	}
	return bytes.Count(out, []byte("\n")), nil
}
