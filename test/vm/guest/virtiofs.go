package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/union9p/union9p/qemu"

	"github.com/union9p/union9p/test/internal/guestutil"
	"github.com/union9p/union9p/test/vm/fixture"
)

// The union on the virtiofs transport (`union9p qemu --virtiofs`):
// union9p itself is the vhost-user-fs device, the guest mounts -t
// virtiofs.
const (
	hostVioName  = "hostvio"
	hostVioMount = "/mnt/hostvio"
)

// hostVirtiofs mounts the virtiofs union by name, runs the suite on it
// and returns the tree it saw (nil if the mount failed). The host offers
// it only with vmtest -virtiofs: without a virtio-fs device there is no
// such suite in this run.
func (r *runner) hostVirtiofs() []string {
	if qemu.VirtiofsDeviceCount() == 0 {
		return nil
	}
	if !r.step(hostVioName, "guest-mount", func() error {
		if err := os.MkdirAll(hostVioMount, 0o755); err != nil {
			return err
		}
		if err := guestutil.Command("/bin/union9p", "guest-mount", hostVioName, hostVioMount); err != nil {
			return err
		}
		return mountedVirtiofs(hostVioMount, qemu.VirtfsTagPrefix+hostVioName)
	}) {
		r.skipSuite(hostVioName, "guest-mount failed")
		return nil
	}
	r.suite(hostVioName, hostVioMount)
	r.step(hostVioName, "direct-write-then-reopen", func() error {
		note, err := checkDirectWriteReopen(hostVioMount)
		if err == nil {
			fmt.Printf("hostvio: direct-write-then-reopen: %s\n", note)
		}
		return err
	})
	r.step(hostVioName, "dd-write-then-read-back", func() error { return checkDirectWriteDD(hostVioMount) })
	// Direct reads where the kernel allows mmap of direct-io files
	// (checks_directmmap.go).
	r.step(hostVioName, "direct-reads-by-kernel", func() error {
		note, err := checkDirectReadsByKernel(hostVioMount)
		if err == nil {
			fmt.Printf("hostvio: direct-reads-by-kernel: %s\n", note)
		}
		return err
	})
	r.step(hostVioName, "write-mmap-coherence", func() error { return checkWriteMmapCoherence(hostVioMount) })
	r.step(hostVioName, "exec-from-mount", func() error { return checkExecFromMount(hostVioMount) })
	r.step(hostVioName, "more-objects-than-descriptors", func() error {
		note, err := checkManyObjects(hostVioMount)
		if err == nil {
			fmt.Printf("hostvio: more-objects-than-descriptors: %s\n", note)
		}
		return err
	})
	var view []string
	r.step(hostVioName, "manifest", func() (err error) {
		view, err = fixture.Manifest(hostVioMount, viewOptions)
		return err
	})
	// Server restarts (virtiofs_restart.go): the host kills the worker.
	r.step(hostVioName, "worker-killed-remount", func() error {
		note, err := checkWorkerRestart(hostVioMount, view)
		if err == nil {
			fmt.Printf("hostvio: worker-killed-remount: %s\n", note)
		}
		return err
	})
	r.step(hostVioName, "worker-killed-lazy-umount", func() error { return checkLazyUnmountKeepsSession(hostVioMount) })
	r.step(hostVioName, "remount-repeatedly", func() error { return remountVirtiofsRepeatedly(hostVioName, hostVioMount) })
	return view
}

// remountVirtiofsRepeatedly writes a probe, unmounts dir, and then mounts
// the union there and unmounts it again and again: each mount is a new
// FUSE session on the same device (FUSE_INIT ... DESTROY; Linux shares a
// live superblock between mounts of one tag, so each mount follows the
// last one's unmount) and must see the probe. It leaves dir unmounted.
func remountVirtiofsRepeatedly(name, dir string) error {
	want := fmt.Sprint(time.Now().UnixNano())
	probe := filepath.Join(dir, "remount-probe")
	if err := os.WriteFile(probe, []byte(want), 0o644); err != nil {
		return err
	}
	if err := guestutil.UnmountAndWait(dir, ""); err != nil {
		return err
	}
	for i := range 10 {
		if err := guestutil.Command("/bin/union9p", "guest-mount", "virtiofs:"+name, dir); err != nil {
			return fmt.Errorf("mount %d: %w", i, err)
		}
		err := mountedVirtiofs(dir, qemu.VirtfsTagPrefix+name)
		var b []byte
		if err == nil {
			b, err = os.ReadFile(probe)
		}
		if err == nil && string(b) != want {
			err = fmt.Errorf("the new session shows %q, want %q", b, want)
		}
		if err == nil && i == 9 {
			err = os.Remove(probe)
		}
		if uerr := guestutil.UnmountAndWait(dir, ""); err == nil {
			err = uerr
		}
		if err != nil {
			return fmt.Errorf("mount %d: %w", i, err)
		}
	}
	return nil
}

// mountedVirtiofs checks that dir is a virtiofs mount of tag (guest-mount
// chose the virtio-fs device, not the network).
func mountedVirtiofs(dir, tag string) error {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[1] == dir {
			if f[2] != "virtiofs" || f[0] != tag {
				return fmt.Errorf("%s is %s %s, want virtiofs from %s", dir, f[0], f[2], tag)
			}
			return nil
		}
	}
	return fmt.Errorf("%s is not mounted", dir)
}
