package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/union9p/union9p/test/internal/guestutil"
	"github.com/union9p/union9p/test/vm/fixture"
	"golang.org/x/sys/unix"
)

// Paths inside the guest.
const (
	hostPort  = "host" // guest-mount's default: trans=tcp, found by name
	hostMount = "/mnt/host"
	// The second host union (same lowers, its own upper) is mounted
	// with access=user: the server, not the guest kernel, then decides
	// what each user may do. Its small msize makes big directories,
	// reads and writes take many requests.
	hostUserPort  = "serial:union9p.hostuser" // the virtio-serial relay
	hostUserMount = "/mnt/hostuser"
	localMount    = "/mnt/local"
	ovlMount      = "/mnt/overlay"
	scratchDev    = "/dev/vda" // an empty ext4 disk from the host
	scratch       = "/scratch"
	layers        = scratch + "/layers"
	manifestDir   = ".vmtest" // in the host union: the tree the guest saw
)

// mountOptions are the 9p client options of both union9p mounts:
// cache=mmap for shared writable mappings, posixacl so that ACLs reach
// the server with the default access=client.
const mountOptions = "cache=mmap,posixacl"

// viewOptions describe a union as its clients see it, for comparing two
// unions over the same layers.
var viewOptions = fixture.ManifestOptions{
	CountOnly: []string{"big"},
	Skip:      []string{manifestDir},
	MaxSize:   64 << 20,
}

// layerOptions describe a layer exactly, to prove it unchanged. The
// entries of big/ are only counted here, to keep the guest fast; the host
// checks its own lowers in full.
var layerOptions = fixture.ManifestOptions{Times: true, Private: true, DirNlink: true, CountOnly: []string{"l1/big", "l2/big"}}

func (r *runner) run() {
	// 1. The host's union over trans=tcp (guest-mount's default path).
	var hostView []string
	mounted := r.step("host", "guest-mount", func() error {
		if err := os.MkdirAll(hostMount, 0o755); err != nil {
			return err
		}
		if err := guestutil.Command("/bin/union9p", "guest-mount", "-o", mountOptions, hostPort, hostMount); err != nil {
			return err
		}
		return mountedWith(hostMount, "union9p:tcp:")
	})
	if mounted {
		r.storm(hostMount) // storm.go
		r.suite("host", hostMount)
		r.step("host", "write-manifest", func() error {
			var err error
			if hostView, err = fixture.Manifest(hostMount, viewOptions); err != nil {
				return err
			}
			dir := filepath.Join(hostMount, manifestDir)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "manifest"), []byte(strings.Join(hostView, "\n")+"\n"), 0o644)
		})
		r.step("host", "hostile-connections", func() error { return hostileConnections(hostMount) })
		r.step("host", "remount-repeatedly", func() error { return remountRepeatedly(hostPort, hostMount) })
		r.step("host", "unmount", func() error { return guestutil.UnmountAndWait(hostMount, "") })
	} else {
		r.skipSuite("host", "guest-mount failed")
	}

	// 1b. The same through the virtio-serial relay, with permission
	// checks left to the server.
	if r.step("hostuser", "guest-mount", func() error {
		if err := os.MkdirAll(hostUserMount, 0o755); err != nil {
			return err
		}
		if err := guestutil.Command("/bin/union9p", "guest-mount", "-o", "cache=mmap,access=user,msize=16384", hostUserPort, hostUserMount); err != nil {
			return err
		}
		return mountedWith(hostUserMount, "union9p:union9p.hostuser")
	}) {
		r.suite("hostuser", hostUserMount)
		r.step("hostuser", "unmount", func() error { return guestutil.UnmountAndWait(hostUserMount, "guest-relay") })
	} else {
		r.skipSuite("hostuser", "guest-mount failed")
	}

	// 1c. The default path as root: virtfs (virtfs.go).
	hostVfsView := r.hostVirtfs()
	// 1d. The virtiofs transport (virtiofs.go).
	hostVioView := r.hostVirtiofs()

	// 2. Guest-local layers, mounted with mount -t union9p and overlayfs.
	l1, l2 := filepath.Join(layers, "l1"), filepath.Join(layers, "l2")
	var lowersBefore []string
	// tmpfs has no user.* xattrs before Linux 6.6, so the layers live on
	// an ext4 disk.
	if !r.step("guest", "build-layers", func() error {
		if err := waitFor(scratchDev, 5*time.Second); err != nil {
			return err
		}
		if err := os.MkdirAll(scratch, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(scratchDev, scratch, "ext4", 0, ""); err != nil {
			return fmt.Errorf("mount %s: %w", scratchDev, err)
		}
		for _, d := range []string{l1, l2, layers + "/u9", layers + "/w9", layers + "/uo", layers + "/wo", localMount, ovlMount} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		if err := fixture.Build(l1, l2); err != nil {
			return err
		}
		var err error
		lowersBefore, err = fixture.Manifest(layers, lowersOnly(layerOptions))
		return err
	}) {
		r.skipSuite("local", "no layers")
		r.skipSuite("overlay", "no layers")
		return
	}

	lower := l1 + ":" + l2
	var localView, ovlView []string
	if r.step("local", "mount-t-union9p", func() error {
		return guestutil.Command("/bin/mount", "-t", "union9p", "-o",
			"lowerdir="+lower+",upperdir="+layers+"/u9,workdir="+layers+"/w9,metacopy=on,"+mountOptions, "local", localMount)
	}) {
		r.suite("local", localMount)
		r.step("local", "upper-metacopy", func() error { return upperMetacopy(layers + "/u9") })
		r.step("local", "manifest", func() (err error) {
			localView, err = fixture.Manifest(localMount, viewOptions)
			return err
		})
	} else {
		r.skipSuite("local", "mount -t union9p failed")
	}
	if r.step("overlay", "mount-t-overlay", func() error {
		return guestutil.Command("/bin/mount", "-t", "overlay", "-o",
			"lowerdir="+lower+",upperdir="+layers+"/uo,workdir="+layers+"/wo,redirect_dir=on,metacopy=on", "overlay", ovlMount)
	}) {
		r.suite("overlay", ovlMount)
		r.step("overlay", "manifest", func() (err error) {
			ovlView, err = fixture.Manifest(ovlMount, viewOptions)
			return err
		})
	} else {
		r.skipSuite("overlay", "mount -t overlay failed")
	}

	// 3. Differences from the reference.
	r.compare("host", "overlay")
	r.compare("hostuser", "overlay")
	if hostVfsView != nil {
		r.compare("hostvfs", "overlay")
	}
	if hostVioView != nil {
		r.compare("hostvio", "overlay")
	}
	r.compare("local", "overlay")
	for _, v := range []struct {
		suite string
		view  []string
	}{{"host", hostView}, {"hostvfs", hostVfsView}, {"hostvio", hostVioView}, {"local", localView}} {
		if (v.suite == "hostvfs" || v.suite == "hostvio") && v.view == nil {
			continue // not offered in this run (vmtest -virtfs, -virtiofs)
		}
		r.step(v.suite, "tree-matches-overlay", func() error {
			if v.view == nil || ovlView == nil {
				return errors.New("a manifest is missing")
			}
			return fixture.DiffError(fixture.Diff(v.view, ovlView, v.suite, "overlay"))
		})
	}
	r.step("local", "unmount", func() error { return guestutil.UnmountAndWait(localMount, "mount-serve") })
	r.step("local", "mount-without-user-nobody", func() error { return mountWithoutNobody(lower) })
	r.step("overlay", "unmount", func() error { return unix.Unmount(ovlMount, 0) })
	r.fullUpper() // exhaust.go
	r.step("guest", "lowers-unchanged", func() error {
		after, err := fixture.Manifest(layers, lowersOnly(layerOptions))
		if err != nil {
			return err
		}
		return fixture.DiffError(fixture.Diff(lowersBefore, after, "before", "after"))
	})
}

// mountWithoutNobody mounts a read-only union with mount -t union9p while
// /etc/passwd has no "nobody": the kernel's first Tattach names uname
// "nobody" with no numeric uid, and a server must not depend on its own
// password file knowing that name (minimal guests and containers have
// none).
func mountWithoutNobody(lower string) error {
	const passwd = "/tmp/passwd-without-nobody"
	if err := os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		return err
	}
	if err := unix.Mount(passwd, "/etc/passwd", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s over /etc/passwd: %w", passwd, err)
	}
	defer unix.Unmount("/etc/passwd", 0)
	const dir = "/mnt/nonobody"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := guestutil.Command("/bin/mount", "-t", "union9p", "-o", "lowerdir="+lower, "nonobody", dir); err != nil {
		return err
	}
	_, err := os.Stat(filepath.Join(dir, "read/shadow.txt"))
	if uerr := guestutil.UnmountAndWait(dir, "mount-serve"); err == nil {
		err = uerr
	}
	return err
}

// waitFor waits until path exists.
func waitFor(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := os.Stat(path)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lowersOnly restricts a manifest of the layers directory to l1 and l2.
func lowersOnly(o fixture.ManifestOptions) fixture.ManifestOptions {
	o.Skip = []string{"u9", "w9", "uo", "wo"}
	return o
}

// mountedWith checks that dir is a 9p mount whose source in /proc/mounts
// starts with source: guest-mount names the transport there
// (union9p:tcp:ADDR:PORT, union9p:PORT for the relay), and the suite must
// run over the transport it names.
func mountedWith(dir, source string) error {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[1] == dir {
			if f[2] != "9p" || !strings.HasPrefix(f[0], source) {
				return fmt.Errorf("%s is %s %s %s, want 9p from %s", dir, f[0], f[2], f[3], source)
			}
			return nil
		}
	}
	return fmt.Errorf("%s not in /proc/mounts", dir)
}
