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
// filesystem.
const (
	chownFiles = 2000
	chownDir   = "t"
)

type chownResult struct {
	Mode      string // metacopy=on / off
	Times     []time.Duration
	UpperData int64 // bytes of file data in the upper after the last round
}

// sectionChown measures chown -R of chownFiles files totalling size bytes.
func sectionChown(ctx context.Context, cl *cleanups, cfg config, binary, dir string, out io.Writer) error {
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
	results := []*chownResult{{Mode: "on"}, {Mode: "off"}}
	rounds := min(cfg.CopyUpRounds, 3)
	for r := range rounds {
		order := slices.Clone(results)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, res := range order {
			progress("chown: round %d, metacopy=%s", r+1, res.Mode)
			d, data, err := chownRound(ctx, cl, binary, lower, filepath.Join(dir, fmt.Sprintf("%s%d", res.Mode, r)), res.Mode)
			if err != nil {
				return fmt.Errorf("chown with metacopy=%s: %w", res.Mode, err)
			}
			res.Times = append(res.Times, d)
			res.UpperData = data
		}
	}
	on, off := results[0], results[1]
	ratio := float64(medianDuration(on.Times)) / float64(medianDuration(off.Times))
	fmt.Fprintf(out, "\n== chown -R (walk+Tsetattr uid,gid+clunk) of %d lower files, %d MiB in all, 1 connection, median of %d; "+
		"ratio = metacopy=on time / metacopy=off time (target < 0.10: metadata only)\n", chownFiles, cfg.CopyUpSize>>20, rounds)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "union9p\ttime\trounds\tfile data in upper\n")
	for _, res := range results {
		fmt.Fprintf(tw, "metacopy=%s\t%s\t%s\t%d MiB (%d bytes)\n", res.Mode, formatDuration(medianDuration(res.Times)),
			formatDurations(res.Times), res.UpperData>>20, res.UpperData)
	}
	tw.Flush()
	verdict := "ok"
	if ratio >= 0.10 || on.UpperData != 0 {
		verdict = "MISS"
	}
	fmt.Fprintf(out, "ratio %.3f, upper data with metacopy=on: %d bytes  %s\n", ratio, on.UpperData, verdict)
	return nil
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
// times the chown of every file, checks one, and returns the time and the
// file data that landed in the upper.
func chownRound(ctx context.Context, cl *cleanups, binary, lower, root, mode string) (time.Duration, int64, error) {
	upper, work := filepath.Join(root, "upper"), filepath.Join(root, "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, 0, err
		}
	}
	defer removeRound(root)
	sock := filepath.Join(root, "sock")
	srv, err := startServer(ctx, cl, "union9p-chown-"+mode, sock, "", root, binary,
		"serve", "--lower", lower, "--upper", upper, "--workdir", work, "-o", "metacopy="+mode, "--listen", "unix:"+sock)
	if err != nil {
		return 0, 0, err
	}
	defer srv.stop()
	s, err := openSession(srv, metaMsize)
	if err != nil {
		return 0, 0, err
	}
	defer s.close()
	set := p9wire.SetAttr{Valid: p9wire.SetattrUID | p9wire.SetattrGID, UID: 1000, GID: 1000}
	start := time.Now()
	dir, err := s.walk(rootFid, chownDir)
	if err != nil {
		return 0, 0, err
	}
	for i := range chownFiles {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		f := s.fid()
		if _, err := s.c.Walk(dir, f, fileName(i)); err != nil {
			return 0, 0, err
		}
		if err := s.c.Setattr(f, set); err != nil {
			return 0, 0, fmt.Errorf("setattr %s: %w", fileName(i), err)
		}
		if err := s.c.Clunk(f); err != nil {
			return 0, 0, err
		}
	}
	elapsed := time.Since(start)
	// What a client sees afterwards: the new owner, the lower's data.
	f := s.fid()
	if _, err := s.c.Walk(dir, f, fileName(chownFiles-1)); err != nil {
		return 0, 0, err
	}
	a, err := s.c.Getattr(f, p9wire.GetattrBasic)
	if err == nil && (a.UID != 1000 || a.GID != 1000) {
		err = fmt.Errorf("after chown: %d:%d", a.UID, a.GID)
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
		return 0, 0, err
	}
	return elapsed, upperDataBytes(upper), nil
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
