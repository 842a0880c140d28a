package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
)

// sectionCreateJournal: the servers section's create case again, with
// both servers' trees on a journaled ext4 loop image (journal.go) instead
// of the bench directory's filesystem. There creating an inode costs the
// same whatever was deleted before, on the host or by an earlier run, so
// the figure says what the servers themselves do per create. It is printed
// beside, not instead of, the one on the bench directory's filesystem.
func sectionCreateJournal(ctx context.Context, cl *cleanups, cfg config, binary string, img *journalImage, out io.Writer) error {
	mnt, err := img.mount(ctx, cl)
	if err != nil {
		return err
	}
	progress("servers: building trees on the journaled ext4 image")
	u, d, _, err := startServerPair(ctx, cl, binary, filepath.Join(mnt, "servers"))
	if err != nil {
		return err
	}
	defer u.stop()
	defer d.stop()
	rows, err := compareEach(ctx, cfg, u, d, "servers on the journaled image", func(w workload) bool { return w.Key == "create" })
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n== create again, both servers' trees on %s instead of the bench directory's filesystem; ratio = union9p/diod speed\n", journalImageName)
	printComparisons(out, "union9p", "diod", rows, func(c comparison) *target { return serverTarget(c.Workload) })
	return nil
}
