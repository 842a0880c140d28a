package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/union9p/union9p/qemu"
	"github.com/union9p/union9p/test/internal/guestutil"
	"github.com/union9p/union9p/test/vm/fixture"
	"golang.org/x/sys/unix"
)

// Server restarts on the virtiofs transport. The guest asks the host to
// kill the union's worker process (SIGKILL) by creating killMarker in
// the union: it lands in the union's upper directory, which the host
// (test/vm vioworker.go) watches. The keeper then starts a new worker
// (after 1 s, then 2 s, ...); QEMU's device stays up, the old FUSE
// session is gone: the mount answers ENOTCONN until the guest mounts
// again.

// killMarker is the file whose appearance in the upper directory makes
// the host kill the virtiofs worker; the guest removes it once the new
// worker answers.
const killMarker = ".union9p-kill-worker"

// bigFile is read by killWorker's busy loops: large direct reads keep
// requests in the worker's hands long enough to be caught by the kill.
const bigFile = "restart-big.bin"

// killWorker asks the host to kill the worker serving the mount at dir
// and waits until the new worker answers (ENOTCONN for a request of the
// old session). It returns how long that took and how many requests
// failed with EIO. With busy, four loops read bigFile (O_DIRECT, 1 MiB
// at a time) without pause meanwhile, so that requests are likely in
// the worker's hands when it is killed: each must still end (the new
// worker answers those EIO), none may hang.
func killWorker(dir string, busy bool) (time.Duration, int, error) {
	type result struct {
		eio int
		err error
	}
	loops := 1
	if busy {
		loops = 4
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for l := 0; busy && l < loops; l++ {
		f, err := os.OpenFile(filepath.Join(dir, bigFile), os.O_RDONLY|unix.O_DIRECT, 0)
		if err != nil {
			return 0, 0, err
		}
		files = append(files, f)
	}
	start := time.Now()
	if err := os.WriteFile(filepath.Join(dir, killMarker), []byte("kill\n"), 0o644); err != nil {
		return 0, 0, err
	}
	results := make(chan result, loops)
	for l := 0; l < loops; l++ {
		go func() {
			r := result{}
			var buf []byte
			if busy {
				// O_DIRECT wants an aligned buffer: a mapping is.
				var err error
				if buf, err = unix.Mmap(-1, 0, 1<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE); err != nil {
					results <- result{err: err}
					return
				}
				defer unix.Munmap(buf)
			}
			for i := 0; ; i++ {
				var err error
				if busy {
					_, err = files[l].ReadAt(buf, int64(i%8)<<20)
				} else {
					// A new name each time: no cached (negative)
					// entry answers it.
					_, err = os.Lstat(filepath.Join(dir, fmt.Sprintf(".probe-%d", i)))
					if errors.Is(err, unix.ENOENT) {
						err = nil
					}
				}
				if errors.Is(err, unix.ENOTCONN) {
					break
				}
				if errors.Is(err, unix.EIO) {
					r.eio++ // the request was in the killed worker's hands
				} else if err != nil {
					r.err = fmt.Errorf("while the worker is replaced: %v (want success or EIO, then ENOTCONN)", err)
					break
				}
				if time.Since(start) > 60*time.Second {
					r.err = errors.New("no ENOTCONN 60 s after asking the host to kill the worker")
					break
				}
				if !busy {
					time.Sleep(50 * time.Millisecond)
				}
			}
			results <- r
		}()
	}
	eio := 0
	var err error
	for l := 0; l < loops; l++ {
		r := <-results
		eio += r.eio
		err = errors.Join(err, r.err)
	}
	return time.Since(start), eio, err
}

// mountVirtiofs mounts the virtiofs union again.
func mountVirtiofs(dir string) error {
	if err := guestutil.Command("/bin/union9p", "guest-mount", hostVioName, dir); err != nil {
		return err
	}
	return mountedVirtiofs(dir, qemu.VirtfsTagPrefix+hostVioName)
}

// checkWorkerRestart: reads running when the worker is killed all end
// (data, EIO or ENOTCONN; none hangs); a file written before the
// kill is read after umount and mount, and the union looks as it did
// before (view); the kill marker is removed through the new session.
func checkWorkerRestart(dir string, view []string) (string, error) {
	before := filepath.Join(dir, "restart-before.txt")
	const content = "written before the worker was killed\n"
	if err := os.WriteFile(before, []byte(content), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, bigFile), bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16), 0o644); err != nil {
		return "", err
	}
	took, eio, err := killWorker(dir, true)
	if err != nil {
		return "", err
	}
	if _, err := os.ReadFile(before); !errors.Is(err, unix.ENOTCONN) && err != nil {
		return "", fmt.Errorf("read in the old session: %v, want ENOTCONN (or cached data)", err)
	}
	if err := unix.Unmount(dir, 0); err != nil {
		return "", fmt.Errorf("umount after the worker died: %w", err)
	}
	if err := mountVirtiofs(dir); err != nil {
		return "", fmt.Errorf("mount again: %w", err)
	}
	b, err := os.ReadFile(before)
	if err != nil || string(b) != content {
		return "", fmt.Errorf("after mounting again: %q, %v; want %q", b, err, content)
	}
	for _, f := range []string{before, filepath.Join(dir, bigFile), filepath.Join(dir, killMarker)} {
		if err := os.Remove(f); err != nil {
			return "", err
		}
	}
	after, err := fixture.Manifest(dir, viewOptions)
	if err != nil {
		return "", err
	}
	if err := fixture.DiffError(fixture.Diff(view, after, "before-kill", "after-remount")); err != nil {
		return "", err
	}
	return fmt.Sprintf("the new worker answered %v after the request to kill; %d reads in flight at the kill failed with EIO", took.Round(10*time.Millisecond), eio), nil
}

// checkLazyUnmountKeepsSession: with a file still open, umount fails
// (EBUSY) and umount -l detaches the mount, but Linux keeps its
// superblock, and with it the dead session: a mount of the same tag
// meanwhile gets that superblock back and still answers ENOTCONN. Once
// the file is closed and that mount unmounted, mounting again works.
func checkLazyUnmountKeepsSession(dir string) error {
	f, err := os.Open(filepath.Join(dir, "restart-open.txt"))
	if errors.Is(err, unix.ENOENT) {
		if err = os.WriteFile(filepath.Join(dir, "restart-open.txt"), []byte("open\n"), 0o644); err == nil {
			f, err = os.Open(filepath.Join(dir, "restart-open.txt"))
		}
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, _, err := killWorker(dir, false); err != nil {
		return err
	}
	if err := unix.Unmount(dir, 0); !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("umount with a file open: %v, want EBUSY", err)
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("umount -l: %w", err)
	}
	if err := mountVirtiofs(dir); err != nil {
		return fmt.Errorf("mount after umount -l: %w", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, ".probe-lazy")); !errors.Is(err, unix.ENOTCONN) {
		return fmt.Errorf("lookup on a mount made while the old one was held open: %v, want ENOTCONN (the old session)", err)
	}
	f.Close()
	if err := unix.Unmount(dir, 0); err != nil {
		return fmt.Errorf("umount once the file is closed: %w", err)
	}
	if err := mountVirtiofs(dir); err != nil {
		return fmt.Errorf("mount again: %w", err)
	}
	for _, name := range []string{"restart-open.txt", killMarker} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("in the new session: %w", err)
		}
	}
	return nil
}
