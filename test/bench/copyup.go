package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/union9p/union9p/test/p9wire"
	"golang.org/x/sys/unix"
)

// copyUpResult is the first-write latency of one large lower file through
// union9p and through the kernel's overlayfs on one filesystem.
type copyUpResult struct {
	FS               string // filesystem of lower and upper
	Size             int64
	Union9p, Overlay []time.Duration
	// Union9pAgain and OverlayAgain time the same sequence once more,
	// when the file is already in the upper: what the first write costs
	// beyond them is the copy-up itself (for union9p, without the five
	// 9P round trips).
	Union9pAgain, OverlayAgain []time.Duration
}

// CopyOnlyRatio is Ratio with each side's second-write time subtracted.
func (r copyUpResult) CopyOnlyRatio() float64 {
	u := medianDuration(r.Union9p) - medianDuration(r.Union9pAgain)
	o := medianDuration(r.Overlay) - medianDuration(r.OverlayAgain)
	if u <= 0 || o <= 0 {
		return 0
	}
	return float64(o) / float64(u)
}

// Ratio is overlayfs time over union9p time: a speed ratio, >1 when
// union9p copies up faster.
func (r copyUpResult) Ratio() float64 {
	u := medianDuration(r.Union9p)
	if u == 0 {
		return 0
	}
	return float64(medianDuration(r.Overlay)) / float64(u)
}

// Noise is half the max-min spread of both sides' first writes, relative
// to their medians (the larger of the two).
func (r copyUpResult) Noise() float64 {
	return max(spreadDuration(r.Union9p), spreadDuration(r.Overlay)) / 2
}

func spreadDuration(ds []time.Duration) float64 {
	m := medianDuration(ds)
	if m == 0 {
		return 0
	}
	return float64(slices.Max(ds)-slices.Min(ds)) / float64(m)
}

func medianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// copyUpName is the lower file that is copied up.
const copyUpName = "big"

// benchCopyUp measures the first write to a size-byte lower file, which
// copies the whole file to the upper, in alternating rounds: union9p
// (Twalk, Tgetattr, Tlopen O_WRONLY, Twrite of 1 byte, Tclunk, as open +
// write + close on v9fs) against open(O_WRONLY) + pwrite of 1 byte + close
// on an overlayfs mount. Lower and uppers live in dir, so both copy within
// one filesystem. Each round gets a fresh upper (and a fresh union9p
// process or overlayfs mount); its removal and a sync(2) happen between
// rounds, untimed, so that writeback of one round does not land in the
// next.
func benchCopyUp(ctx context.Context, cl *cleanups, binary, dir string, size int64, rounds int) (copyUpResult, error) {
	res := copyUpResult{FS: fsType(dir), Size: size}
	lower := filepath.Join(dir, "lower")
	if err := os.MkdirAll(lower, 0o755); err != nil {
		return res, err
	}
	f, err := os.Create(filepath.Join(lower, copyUpName))
	if err != nil {
		return res, err
	}
	err = writePattern(f, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, err
	}
	unix.Sync()

	for r := range rounds {
		runs := []func() error{
			func() error {
				first, again, err := copyUpUnion9p(ctx, cl, binary, lower, filepath.Join(dir, fmt.Sprintf("u%d", r)), size)
				res.Union9p, res.Union9pAgain = append(res.Union9p, first), append(res.Union9pAgain, again)
				return err
			},
			func() error {
				first, again, err := copyUpOverlay(cl, lower, filepath.Join(dir, fmt.Sprintf("o%d", r)), size)
				res.Overlay, res.OverlayAgain = append(res.Overlay, first), append(res.OverlayAgain, again)
				return err
			},
		}
		if r%2 == 1 {
			slices.Reverse(runs)
		}
		for _, run := range runs {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			if err := run(); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// copyUpUnion9p serves lower under a fresh upper in root and times the
// first write to the big file, then the same sequence again.
func copyUpUnion9p(ctx context.Context, cl *cleanups, binary, lower, root string, size int64) (first, again time.Duration, err error) {
	st := stack{Upper: filepath.Join(root, "upper"), Lowers: []string{lower}, Work: filepath.Join(root, "work")}
	for _, d := range []string{st.Upper, st.Work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, 0, err
		}
	}
	defer removeRound(root)
	srv, err := startUnion9p(ctx, cl, "union9p-copyup", binary, st, root)
	if err != nil {
		return 0, 0, err
	}
	defer srv.stop()
	s, err := openSession(srv, metaMsize)
	if err != nil {
		return 0, 0, err
	}
	defer s.close()
	if first, err = writeOneByte9P(s); err != nil {
		return 0, 0, err
	}
	if err := checkCopiedUp(filepath.Join(st.Upper, copyUpName), size); err != nil {
		return 0, 0, err
	}
	again, err = writeOneByte9P(s)
	return first, again, err
}

// writeOneByte9P does open(O_WRONLY) + write(1 byte) + close of the big
// file as v9fs does it (Twalk, Tgetattr, Tlopen, Twrite, Tclunk) and
// returns how long it took.
func writeOneByte9P(s *session) (time.Duration, error) {
	start := time.Now()
	f := s.fid()
	if _, err := s.c.Walk(rootFid, f, copyUpName); err != nil {
		return 0, err
	}
	if _, err := s.c.Getattr(f, p9wire.GetattrBasic); err != nil {
		return 0, err
	}
	if _, _, err := s.c.Lopen(f, p9wire.OWronly); err != nil {
		return 0, err
	}
	if _, err := s.c.Write(f, 0, []byte{'!'}); err != nil {
		return 0, err
	}
	if err := s.c.Clunk(f); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// copyUpOverlay mounts overlayfs over lower with a fresh upper in root and
// times the first write to the big file, then the same again.
func copyUpOverlay(cl *cleanups, lower, root string, size int64) (first, again time.Duration, err error) {
	upper, work, mnt := filepath.Join(root, "upper"), filepath.Join(root, "work"), filepath.Join(root, "mnt")
	for _, d := range []string{upper, work, mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, 0, err
		}
	}
	defer removeRound(root)
	umount, err := mountOverlay(cl, lower, upper, work, mnt)
	if err != nil {
		return 0, 0, err
	}
	defer umount()
	path := filepath.Join(mnt, copyUpName)
	if first, err = writeOneByte(path); err != nil {
		return 0, 0, err
	}
	if err := checkCopiedUp(filepath.Join(upper, copyUpName), size); err != nil {
		return 0, 0, err
	}
	again, err = writeOneByte(path)
	return first, again, err
}

// writeOneByte does open(O_WRONLY) + pwrite(1 byte) + close and returns
// how long it took.
func writeOneByte(path string) (time.Duration, error) {
	start := time.Now()
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	_, err = unix.Pwrite(fd, []byte{'!'}, 0)
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	return time.Since(start), err
}

// checkCopiedUp verifies that the upper has a complete copy with the
// written byte.
func checkCopiedUp(path string, size int64) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("no copy-up: %w", err)
	}
	if st.Size() != size {
		return fmt.Errorf("copy-up of %s has %d bytes, want %d", path, st.Size(), size)
	}
	b := make([]byte, 2)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.ReadAt(b, 0); err != nil {
		return err
	}
	if b[0] != '!' || b[1] != byte(1*7+1) {
		return fmt.Errorf("copy-up of %s starts with %q, want the written byte then the lower's data", path, b)
	}
	return nil
}

// removeRound deletes a round's upper and flushes what is still dirty, so
// that the next round starts on a quiet disk.
func removeRound(root string) {
	os.RemoveAll(root)
	unix.Sync()
}
