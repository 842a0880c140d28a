package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Inode allocation on ext4 without a journal (the root filesystem of the
// machines this bench was written on) skips every inode freed in the last
// minute, or the last six while its inode table block is not yet written
// back (fs/ext4/ialloc.c: recently_deleted, RECENTCY_MIN and
// RECENTCY_DIRTY), looking each one up in the buffer cache from the start
// of the block group. So the cost of creating a file there depends on
// what anyone deleted nearby in the minutes before: a server measured just
// after a large removal pays for it on every create and copy-up. Two
// things keep the bench from measuring itself that way:
//
//   - a run keeps what it made until it ends (the chown section keeps
//     every round's tree; the create case never deletes), and the
//     removal at the end is written back and dated (markFreed), so that
//     the next run, if it starts within the minute, first waits until
//     the allocator no longer skips those inodes (settleFreed);
//   - the cases that create (create+write, chown -R with copy-up) are also
//     measured on a journaled ext4 loop image (journalImage), a
//     filesystem of their own with no such scan, where other processes'
//     deletions on the host cannot reach either. Both figures are printed.

// freedMarker is the file, in the directory given by -dir, whose
// modification time says when the last run removed its trees.
const freedMarker = ".union9p-bench-freed"

// recentlyFreedWindow is how long ext4 without a journal skips a freed
// inode whose inode table block is written back (RECENTCY_MIN), plus a
// second for its whole-second clock.
const recentlyFreedWindow = 61 * time.Second

// skipsFreedInodes reports whether dir is on ext4 without a journal.
func skipsFreedInodes(dir string) bool {
	if fsType(dir) != "ext4" {
		return false
	}
	return !hasJournal(dir)
}

// hasJournal reports whether the ext4 filesystem holding dir has a
// journal: jbd2 lists each journaled block device in /proc/fs/jbd2 as
// NAME-INODE.
func hasJournal(dir string) bool {
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil {
		return true // unknown: claim nothing
	}
	uevent, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/uevent", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil {
		return true
	}
	var dev string
	for _, line := range strings.Split(string(uevent), "\n") {
		if v, ok := strings.CutPrefix(line, "DEVNAME="); ok {
			dev = v
		}
	}
	if dev == "" {
		return true
	}
	journals, _ := filepath.Glob(filepath.Join("/proc/fs/jbd2", dev+"-*"))
	return len(journals) > 0
}

// journalNote describes dir's filesystem for the report.
func journalNote(dir string) string {
	if skipsFreedInodes(dir) {
		return "ext4 without a journal: creating an inode skips those freed in the last 1-6 minutes"
	}
	return fsType(dir)
}

// settleFreed syncs, so that inodes other processes freed are skipped for
// one minute only, and waits until the trees the last run removed (as
// markFreed dated them) are no longer skipped, when dir is on ext4
// without a journal. What it did goes to out.
func settleFreed(ctx context.Context, dir string, out io.Writer) error {
	if !skipsFreedInodes(dir) {
		return nil
	}
	syncAll()
	st, err := os.Stat(filepath.Join(dir, freedMarker))
	if err != nil {
		return nil
	}
	wait := recentlyFreedWindow - time.Since(st.ModTime())
	if wait <= 0 || wait > recentlyFreedWindow {
		return nil
	}
	progress("waiting %v: the last run's removed trees are skipped by ext4's inode allocator until then", wait.Round(time.Second))
	fmt.Fprintf(out, "waited %v before measuring: the previous run removed its trees %v ago on this ext4 without a journal\n",
		wait.Round(time.Second), time.Since(st.ModTime()).Round(time.Second))
	select {
	case <-time.After(wait):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// markFreed writes back what the run's removal freed (so that it is
// skipped for one minute, not six) and dates it for the next run.
func markFreed(dir string) error {
	syncAll()
	return os.WriteFile(filepath.Join(dir, freedMarker), nil, 0o644)
}

// journalImage is one journaled ext4 loop image that the sections share
// (each in a directory of its own on it), made at its first use and kept
// until the run ends. Its inode tables and journal are written by mkfs,
// so that no lazy initialisation runs in the background while measuring.
type journalImage struct {
	dir  string // where the image and its mount point go
	size int64  // bytes, sparse

	once sync.Once
	mnt  string
	err  error
}

// mount returns where the image is mounted, making and mounting it on the
// first call.
func (j *journalImage) mount(ctx context.Context, cl *cleanups) (string, error) {
	j.once.Do(func() {
		progress("making a journaled ext4 loop image")
		j.mnt, j.err = mountJournaledExt4(ctx, cl, j.dir, j.size)
	})
	return j.mnt, j.err
}

// journalImageName labels figures taken on a journalImage.
const journalImageName = "ext4 with a journal (loop image, mkfs.ext4 defaults, tables initialised)"
