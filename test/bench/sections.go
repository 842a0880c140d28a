package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"
)

// serverFixture is union9p and diod serving the same merged tree.
type serverFixture struct {
	Union9p, Diod *server
	Floor         *server // floor.go
}

// startServerFixture builds the trees in dir and starts both servers and
// the floor server.
func startServerFixture(ctx context.Context, cl *cleanups, binary, dir string) (*serverFixture, error) {
	u, d, layered, err := startServerPair(ctx, cl, binary, dir)
	if err != nil {
		return nil, err
	}
	f, err := startFloor(ctx, cl, dir, layered.Upper)
	if err != nil {
		return nil, err
	}
	return &serverFixture{Union9p: u, Diod: d, Floor: f}, nil
}

// startServerPair builds the trees in dir and starts union9p on the
// layered one and diod on the plain one; it returns the layered stack.
func startServerPair(ctx context.Context, cl *cleanups, binary, dir string) (u, d *server, layered stack, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, stack{}, err
	}
	seq := filepath.Join(dir, "seqdata")
	if err := writeSeqData(seq); err != nil {
		return nil, nil, stack{}, err
	}
	layered, err = buildStack(filepath.Join(dir, "union"), 3, seq)
	if err != nil {
		return nil, nil, stack{}, err
	}
	plain, err := buildStack(filepath.Join(dir, "plain"), 1, seq)
	if err != nil {
		return nil, nil, stack{}, err
	}
	syncAll()
	if u, err = startUnion9p(ctx, cl, "union9p", binary, layered, dir); err != nil {
		return nil, nil, stack{}, err
	}
	if d, err = startDiod(ctx, cl, plain.Dir(), dir); err != nil {
		return nil, nil, stack{}, err
	}
	return u, d, layered, nil
}

// sectionServers: union9p against diod on every workload.
func sectionServers(ctx context.Context, cfg config, fx *serverFixture, out io.Writer) error {
	rows, err := compareEach(ctx, cfg, fx.Union9p, fx.Diod, "servers", func(workload) bool { return true })
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n== union9p (2 lowers + upper) vs diod (one directory), same merged tree; ratio = union9p/diod speed\n")
	printComparisons(out, "union9p", "diod", rows, func(c comparison) *target { return serverTarget(c.Workload) })
	return printFloor(ctx, cfg, fx, out)
}

// sectionLayers: union9p over 3 lowers + upper against union9p over a
// single directory, on the metadata workloads.
func sectionLayers(ctx context.Context, cl *cleanups, cfg config, binary, dir string, out io.Writer) error {
	progress("layers: building trees (3 lowers + upper, single directory)")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	seq := filepath.Join(dir, "seqdata")
	if err := writeSeqData(seq); err != nil {
		return err
	}
	deep, err := buildStack(filepath.Join(dir, "deep"), 4, seq)
	if err != nil {
		return err
	}
	single, err := buildStack(filepath.Join(dir, "single"), 1, seq)
	if err != nil {
		return err
	}
	syncAll()
	d, err := startUnion9p(ctx, cl, "union9p-3lowers", binary, deep, dir)
	if err != nil {
		return err
	}
	defer d.stop()
	singleNote := "the directory as the upper, no lower"
	s, err := startUnion9p(ctx, cl, "union9p-single", binary, single, dir)
	if err != nil {
		// A server that insists on a lower gets an empty one.
		progress("layers: union9p without a lower failed (%v); adding an empty lower", err)
		empty := filepath.Join(dir, "single", "empty-lower")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return err
		}
		single.Lowers = []string{empty}
		singleNote = "the directory as the upper, over one empty lower"
		if s, err = startUnion9p(ctx, cl, "union9p-single", binary, single, dir); err != nil {
			return err
		}
	}
	defer s.stop()

	rows, err := compareEach(ctx, cfg, d, s, "layers", func(w workload) bool { return w.Metadata })
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n== union9p: 3 lowers + upper vs single directory (%s); ratio = 3lowers/single speed\n", singleNote)
	printComparisons(out, "3lowers", "single", rows, func(comparison) *target { return &target{Min: 0.9} })
	return nil
}

// sectionCopyUp: first write to a large lower file, union9p against the
// kernel's overlayfs, on the bench directory's filesystem and on XFS with
// reflink.
func sectionCopyUp(ctx context.Context, cl *cleanups, cfg config, binary, dir string, out io.Writer) error {
	type fsCase struct {
		name string
		dir  string
	}
	cases := []fsCase{{name: "bench dir", dir: filepath.Join(dir, "plainfs")}}
	if cfg.XFS {
		xdir := filepath.Join(dir, "xfs")
		if err := os.MkdirAll(xdir, 0o755); err != nil {
			return err
		}
		progress("copy-up: making a reflink XFS loop image")
		mnt, err := mountReflinkXFS(ctx, cl, xdir, cfg.CopyUpSize*3+(512<<20))
		if err != nil {
			return err
		}
		cases = append(cases, fsCase{name: "xfs reflink loop", dir: mnt})
	}
	var results []copyUpResult
	for _, c := range cases {
		if err := os.MkdirAll(c.dir, 0o755); err != nil {
			return err
		}
		progress("copy-up: %s (%s), %d MiB file, %d rounds", c.name, fsType(c.dir), cfg.CopyUpSize>>20, cfg.CopyUpRounds)
		r, err := benchCopyUp(ctx, cl, binary, c.dir, cfg.CopyUpSize, cfg.CopyUpRounds)
		if err != nil {
			return fmt.Errorf("copy-up on %s: %w", c.name, err)
		}
		// The lower file is not needed any more; free the space now.
		os.RemoveAll(filepath.Join(c.dir, "lower"))
		results = append(results, r)
	}
	fmt.Fprintf(out, "\n== copy-up: open(O_WRONLY) + write 1 byte + close on a lower file, median of %d; "+
		"again = the same once the file is in the upper; ratio = overlayfs time / union9p time (>1: union9p faster); "+
		"copy-only = the same ratio with each side's \"again\" subtracted\n", cfg.CopyUpRounds)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "fs\tsize\tunion9p\t(again)\toverlayfs\t(again)\tratio\tcopy-only\tnoise\ttarget\n")
	for _, r := range results {
		t := target{Min: 1.0}
		fmt.Fprintf(tw, "%s\t%d MiB\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t±%.0f%%\t%s\n",
			r.FS, r.Size>>20, formatDuration(medianDuration(r.Union9p)), formatDuration(medianDuration(r.Union9pAgain)),
			formatDuration(medianDuration(r.Overlay)), formatDuration(medianDuration(r.OverlayAgain)),
			r.Ratio(), r.CopyOnlyRatio(), 100*r.Noise(), t.verdict(r.Ratio()))
	}
	tw.Flush()
	return nil
}

// sectionSyscalls: host syscalls per operation in each server (strace -c
// -f attached to the process while a fixed number of operations run on one
// connection).
func sectionSyscalls(ctx context.Context, cfg config, fx *serverFixture, dir string, out io.Writer) error {
	fmt.Fprintf(out, "\n== syscalls per operation in the server process (strace -c -f, %d ops, 1 connection)\n", cfg.StraceOps)
	perOp := syscallTable{}
	defer perOp.printTargets(out)
	for _, w := range workloads() {
		if w.Msize == smallMsize {
			continue // the 1 MiB variants say the same per request
		}
		n := max(1, cfg.StraceOps/max(1, w.Cost))
		for _, srv := range []*server{fx.Union9p, fx.Diod} {
			progress("syscalls: %s on %s", w.Name, srv.Name)
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			c, err := countSyscalls(cctx, srv, w, n, dir)
			cancel()
			if err != nil {
				return fmt.Errorf("strace %s on %s: %w", w.Name, srv.Name, err)
			}
			fmt.Fprintf(out, "%-34s %-8s %7.1f/op  top: %s\n", w.Name, srv.Name, c.PerOp(n), c.Top(5, n))
			perOp.add(w.Key, srv.Name, c.PerOp(n))
		}
	}
	return nil
}
