package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/union9p/union9p/test/vm/fixture"
	"golang.org/x/sys/unix"
)

// upperCheck is one expectation about the upper layer after the guest
// suite ran on the host union: the on-disk format is overlayfs's.
type upperCheck struct {
	name string
	run  func(upper string) error
}

var upperChecks = []upperCheck{
	{"upper-whiteout-after-rm", func(u string) error { return isWhiteout(filepath.Join(u, "rm/file.txt")) }},
	{"upper-whiteout-after-rmdir", func(u string) error { return isWhiteout(filepath.Join(u, "rm/emptydir")) }},
	{"upper-opaque-after-rm-r-mkdir", func(u string) error {
		v, err := getxattr(filepath.Join(u, "rm/tree"), "trusted.overlay.opaque")
		if err != nil || v != "y" {
			return fmt.Errorf("rm/tree: trusted.overlay.opaque = %q, %v; want \"y\"", v, err)
		}
		return nil
	}},
	{"upper-copied-up-content", func(u string) error {
		return wantFile(u, "copyup/write.txt", "original\nmore\n", 0o644, 0)
	}},
	{"upper-copied-up-parent-dirs", func(u string) error {
		return wantFile(u, "copyup/dir/deep/file.txt", "deep\nx", 0o640, 0)
	}},
	{"upper-chown", func(u string) error {
		return wantOwner(filepath.Join(u, "copyup/chown.txt"), fixture.UserID)
	}},
	{"upper-setuid", func(u string) error {
		return wantFile(u, "perm/setuid.bin", "#!/bin/sh\n", 0o4711, 0)
	}},
	{"upper-user-owned", func(u string) error {
		for _, n := range []string{"ufile", "udir", "ulink", "ufifo"} {
			if err := wantOwner(filepath.Join(u, "perm/userdir", n), fixture.UserID); err != nil {
				return err
			}
		}
		return nil
	}},
	{"upper-xattr", func(u string) error {
		v, err := getxattr(filepath.Join(u, "copyup/xattr.txt"), "user.added")
		if err != nil || v != "new" {
			return fmt.Errorf("copyup/xattr.txt: user.added = %q, %v", v, err)
		}
		return nil
	}},
	{"upper-large-sparse", func(u string) error {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(u, "sparse/new.bin"), &st); err != nil {
			return err
		}
		if st.Size != 4<<30+12345+5 {
			return fmt.Errorf("sparse/new.bin: size %d", st.Size)
		}
		if st.Blocks*512 > 64<<20 {
			return fmt.Errorf("sparse/new.bin: %d bytes allocated: the hole was filled", st.Blocks*512)
		}
		return nil
	}},
	{"upper-untouched-stay-in-lower", func(u string) error {
		// read/ only sees reads and refused changes (EPERM, EINVAL,
		// ENOTEMPTY), none of which may copy anything up.
		for _, p := range []string{"read", "mmap/data.bin", "sparse/big.bin", "symlink/to-file"} {
			if _, err := os.Lstat(filepath.Join(u, p)); err == nil {
				return fmt.Errorf("%s is in the upper, but the guest only read it or was refused changes", p)
			}
		}
		return nil
	}},
}

// isWhiteout accepts both overlayfs whiteout formats: a 0/0 character
// device, or an empty file with an overlay whiteout xattr.
func isWhiteout(p string) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
		return nil
	}
	if _, err := getxattr(p, "trusted.overlay.whiteout"); err == nil {
		return nil
	}
	return fmt.Errorf("%s: mode %o rdev %d is no whiteout", p, st.Mode, st.Rdev)
}

func getxattr(p, name string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func wantFile(upper, rel, content string, perm uint32, uid uint32) error {
	p := filepath.Join(upper, rel)
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if string(b) != content {
		return fmt.Errorf("%s: content %q, want %q", rel, b, content)
	}
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return err
	}
	if st.Mode&0o7777 != perm || st.Uid != uid {
		return fmt.Errorf("%s: mode %04o uid %d, want %04o uid %d", rel, st.Mode&0o7777, st.Uid, perm, uid)
	}
	return nil
}

func wantOwner(p string, id uint32) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return err
	}
	if st.Uid != id || st.Gid != id {
		return fmt.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, id, id)
	}
	return nil
}

// workdirLeftovers lists what the union left in its work directory: a
// finished copy-up or marker is renamed out of it.
func workdirLeftovers(work string) ([]string, error) {
	var left []string
	err := filepath.Walk(work, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(work, p)
		if rel == "." || (fi.IsDir() && (rel == "work" || rel == "index")) {
			return nil
		}
		left = append(left, rel)
		return nil
	})
	return left, err
}

// overlayView mounts the host kernel's overlayfs read-only over the upper
// and the lowers (the upper as the topmost lower, so nothing is written)
// and returns the manifest of what it shows, as the guest recorded its
// own view: the upper written by union9p must read the same to overlayfs.
func overlayView(l *hostLayers, mnt string) ([]string, error) {
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return nil, err
	}
	opts := "ro,lowerdir=" + l.upper + ":" + l.top + ":" + l.bottom
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, opts); err != nil {
		return nil, fmt.Errorf("mount -t overlay -o %s: %w", opts, err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	return fixture.Manifest(mnt, fixture.ManifestOptions{
		CountOnly: []string{"big"},
		Skip:      []string{".vmtest"},
		MaxSize:   64 << 20,
	})
}

// guestView reads the manifest the guest wrote into the union.
func guestView(l *hostLayers) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(l.upper, ".vmtest", "manifest"))
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	if len(b) == 0 {
		return nil, errors.New("empty manifest")
	}
	return strings.Split(string(b), "\n"), nil
}
