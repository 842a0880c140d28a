package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/union9p/union9p/test/p9wire"
	"golang.org/x/sys/unix"
)

// The chown section: `chown -R` over a base tree (one Tsetattr of the
// owner per file, as v9fs sends it after the walk) through union9p with
// metacopy=on, which copies metadata only, beside the same through
// union9p with metacopy=off, which copies every byte up. Both in
// alternating rounds with fresh uppers, on the bench directory's
// filesystem and again on a journaled ext4 loop image: the filesystem
// most hosts have, where creating an inode does not pay the scan below.
// After each metacopy=on round the same pass runs again over
// the files now in the upper: the three round trips with no copy-up, the
// floor that the metadata-only copy-up's own cost sits on (not part of
// the ratio).
//
// Every round's tree is kept until the section ends. ext4 without a
// journal (as the root filesystem of the machines this was written on)
// passes over inodes freed in the last one to six minutes when it
// allocates one, looking each up in the inode table from the start of the
// block group (find_inode_bit, recently_deleted): removing a round's
// 2,000 copies just before the next round made every create of that
// round walk past them, 36-40% of the server's time in a metacopy round
// by perf, growing with every round.
const (
	chownFiles = 2000
	chownDir   = "t"
)

type chownResult struct {
	Mode      string // metacopy=on / off
	Times     []time.Duration
	Again     []time.Duration // the same pass again, nothing left to copy up
	UpperData int64           // bytes of file data in the upper after the last round
}

// sectionChown measures chown -R of chownFiles files totalling size bytes,
// with every tree in dir, on the filesystem fsName names.
func sectionChown(ctx context.Context, cl *cleanups, cfg config, binary, dir, fsName string, out io.Writer) error {
	per := cfg.CopyUpSize / chownFiles
	lower := filepath.Join(dir, "lower")
	progress("chown: writing %d files of %d KiB", chownFiles, per>>10)
	for i := range chownFiles {
		p := filepath.Join(lower, chownDir, fileName(i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		err = writePattern(f, per)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	syncAll()
	// Removed only when the section ends (see above).
	var roots []string
	defer func() {
		for _, r := range roots {
			removeRound(r)
		}
	}()
	results := []*chownResult{{Mode: "on"}, {Mode: "off"}}
	kernel := &chownResult{Mode: "on"} // the kernel's overlayfs, for reference
	rounds := min(cfg.CopyUpRounds, 3)
	for r := range rounds {
		order := slices.Clone(results)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, res := range order {
			progress("chown: round %d, metacopy=%s", r+1, res.Mode)
			root := filepath.Join(dir, fmt.Sprintf("%s%d", res.Mode, r))
			roots = append(roots, root)
			d, again, data, err := chownRound(ctx, cl, binary, lower, root, res.Mode)
			if err != nil {
				return fmt.Errorf("chown with metacopy=%s: %w", res.Mode, err)
			}
			res.Times = append(res.Times, d)
			res.Again = append(res.Again, again)
			res.UpperData = data
		}
		progress("chown: round %d, kernel overlayfs metacopy=on", r+1)
		root := filepath.Join(dir, fmt.Sprintf("overlay%d", r))
		roots = append(roots, root)
		d, again, data, err := chownOverlayRound(ctx, cl, lower, root)
		if err != nil {
			return fmt.Errorf("chown through overlayfs with metacopy=on: %w", err)
		}
		kernel.Times = append(kernel.Times, d)
		kernel.Again = append(kernel.Again, again)
		kernel.UpperData = data
	}
	on, off := results[0], results[1]
	ratio := float64(medianDuration(on.Times)) / float64(medianDuration(off.Times))
	fmt.Fprintf(out, "\n== chown -R (walk+Tsetattr uid,gid+clunk) of %d lower files, %d MiB in all, on %s, 1 connection, median of %d; "+
		"ratio = metacopy=on time / metacopy=off time (target < 0.10: metadata only)\n", chownFiles, cfg.CopyUpSize>>20, fsName, rounds)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "union9p\ttime\tper file\trounds\tfile data in upper\n")
	for _, res := range results {
		fmt.Fprintf(tw, "metacopy=%s\t%s\t%s\t%s\t%d MiB (%d bytes)\n", res.Mode, formatDuration(medianDuration(res.Times)),
			perFile(medianDuration(res.Times)), formatDurations(res.Times), res.UpperData>>20, res.UpperData)
	}
	floor := medianDuration(on.Again)
	fmt.Fprintf(tw, "again, in upper\t%s\t%s\t%s\t(metacopy=on server, no copy-up: the round-trip floor)\n",
		formatDuration(floor), perFile(floor), formatDurations(on.Again))
	kfloor := medianDuration(kernel.Again)
	fmt.Fprintf(tw, "overlayfs metacopy=on\t%s\t%s\t%s\t%d MiB (%d bytes of data extents)  (kernel, fchownat, no 9P: reference)\n",
		formatDuration(medianDuration(kernel.Times)), perFile(medianDuration(kernel.Times)), formatDurations(kernel.Times),
		kernel.UpperData>>20, kernel.UpperData)
	fmt.Fprintf(tw, "overlayfs again, in upper\t%s\t%s\t%s\n", formatDuration(kfloor), perFile(kfloor), formatDurations(kernel.Again))
	tw.Flush()
	fmt.Fprintf(out, "metadata-only copy-up itself, a file: union9p %s (metacopy=on - floor), kernel overlayfs %s; floor / metacopy=off = %.3f\n",
		perFile(medianDuration(on.Times)-floor), perFile(medianDuration(kernel.Times)-kfloor),
		float64(floor)/float64(medianDuration(off.Times)))
	verdict := "ok"
	if ratio >= 0.10 || on.UpperData != 0 {
		verdict = "MISS"
	}
	fmt.Fprintf(out, "ratio %.3f, upper data with metacopy=on: %d bytes  %s\n", ratio, on.UpperData, verdict)
	return nil
}

// perFile is d spread over the section's files, in microseconds.
func perFile(d time.Duration) string {
	return fmt.Sprintf("%.0f µs", float64(d.Microseconds())/chownFiles)
}

func formatDurations(ds []time.Duration) string {
	s := ""
	for i, d := range ds {
		if i > 0 {
			s += " "
		}
		s += formatDuration(d)
	}
	return s
}

// chownRound serves lower under a fresh upper in root with metacopy=mode,
// times the chown of every file, checks one, and returns the time, the
// time of the same pass again for metacopy=on (nothing to copy up then),
// and the file data that landed in the upper. The caller removes root.
func chownRound(ctx context.Context, cl *cleanups, binary, lower, root, mode string) (elapsed, again time.Duration, data int64, err error) {
	upper, work := filepath.Join(root, "upper"), filepath.Join(root, "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, 0, 0, err
		}
	}
	sock := filepath.Join(root, "sock")
	srv, err := startServer(ctx, cl, "union9p-chown-"+mode, sock, "", root, binary,
		"serve", "--lower", lower, "--upper", upper, "--workdir", work, "-o", "metacopy="+mode, "--listen", "unix:"+sock)
	if err != nil {
		return 0, 0, 0, err
	}
	defer srv.stop()
	s, err := openSession(srv, metaMsize)
	if err != nil {
		return 0, 0, 0, err
	}
	defer s.close()
	start := time.Now()
	dir, err := s.walk(rootFid, chownDir)
	if err != nil {
		return 0, 0, 0, err
	}
	if err := chownPass(ctx, s, dir, 1000); err != nil {
		return 0, 0, 0, err
	}
	elapsed = time.Since(start)
	owner := uint32(1000)
	if mode == "on" {
		start = time.Now()
		if err := chownPass(ctx, s, dir, 1001); err != nil {
			return 0, 0, 0, err
		}
		again = time.Since(start)
		owner = 1001
	}
	// What a client sees afterwards: the new owner, the lower's data.
	f := s.fid()
	if _, err := s.c.Walk(dir, f, fileName(chownFiles-1)); err != nil {
		return 0, 0, 0, err
	}
	a, err := s.c.Getattr(f, p9wire.GetattrBasic)
	if err == nil && (a.UID != owner || a.GID != owner) {
		err = fmt.Errorf("after chown: %d:%d, want %d", a.UID, a.GID, owner)
	}
	if err == nil {
		_, _, err = s.c.Lopen(f, p9wire.ORdonly)
	}
	if err == nil {
		var b []byte
		if b, err = s.c.Read(f, 0, 4096); err == nil && (len(b) < 2 || b[0] != 1 || b[1] != 8) {
			err = fmt.Errorf("read after chown: not the lower's data")
		}
	}
	s.c.Clunk(f)
	s.c.Clunk(dir)
	if err != nil {
		return 0, 0, 0, err
	}
	return elapsed, again, upperDataBytes(upper), nil
}

// chownPass walks to every file of dir, gives it the owner id:id and
// clunks it: `chown -R` as v9fs sends it.
func chownPass(ctx context.Context, s *session, dir uint32, id uint32) error {
	set := p9wire.SetAttr{Valid: p9wire.SetattrUID | p9wire.SetattrGID, UID: id, GID: id}
	for i := range chownFiles {
		if err := ctx.Err(); err != nil {
			return err
		}
		f := s.fid()
		if _, err := s.c.Walk(dir, f, fileName(i)); err != nil {
			return err
		}
		if err := s.c.Setattr(f, set); err != nil {
			return fmt.Errorf("setattr %s: %w", fileName(i), err)
		}
		if err := s.c.Clunk(f); err != nil {
			return err
		}
	}
	return nil
}

// upperDataBytes sums the allocated bytes of the regular files in dir.
func upperDataBytes(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			var st unix.Stat_t
			if unix.Lstat(p, &st) == nil {
				total += st.Blocks * 512
			}
		}
		return nil
	})
	return total
}
