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

// side is one of the two mounts that are compared.
type side struct {
	name    string
	dir     string // mount point
	doMount func() error
	// helper, if set, is a word in the command line of a process that
	// serves the mount from the guest and must exit after the unmount
	// (union9p's relay).
	helper  string
	mounted bool
}

// nineOptions are the 9p client options both mounts share, so that they
// differ only in transport and server.
func nineOptions(cfg config) string {
	return fmt.Sprintf("cache=%s,msize=%d", cfg.Cache, cfg.Msize)
}

// union9pSide is the union served by union9p on the host, reached over
// virtio-serial with `union9p guest-mount` (a relay in the guest between
// the port and a socketpair the kernel uses with trans=fd).
func union9pSide(cfg config) *side {
	s := &side{name: record.SideUnion9p, dir: "/mnt/" + record.SideUnion9p, helper: "guest-relay"}
	s.doMount = func() error {
		return guestutil.Command("/bin/union9p", "guest-mount", "-o", nineOptions(cfg), cfg.Port, s.dir)
	}
	return s
}

// qemuSide is the directory served by QEMU's virtio-9p server, mounted
// with the kernel's virtio transport.
func qemuSide(cfg config) *side {
	s := &side{name: record.SideQEMU, dir: "/mnt/" + record.SideQEMU}
	s.doMount = func() error {
		data := "trans=virtio,version=9p2000.L," + nineOptions(cfg)
		if err := unix.Mount(cfg.Tag, s.dir, "9p", 0, data); err != nil {
			return fmt.Errorf("mount -t 9p -o %s %s %s: %w", data, cfg.Tag, s.dir, err)
		}
		return nil
	}
	return s
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
	return guestutil.UnmountAndWait(s.dir, s.helper)
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
