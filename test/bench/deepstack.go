package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/union9p/union9p/test/p9wire"
)

// The deep-stack section: container images have tens of layers, and a
// union is only usable over them if a lookup or a listing costs close to
// what it costs over one layer. Every stack here merges to the same tree:
//
//	d/b0000 .. d/b0999   in the bottom lower; each higher lower has d/
//	                     too, with deepShadowed names of it (shadowing
//	                     the bottom's), so d/ is merged over every layer
//
// The walked files are in the bottom layer and shadowed nowhere, so every
// lookup passes every layer.
const (
	deepFiles    = 1000
	deepShadowed = 5 // per higher lower
	deepDir      = "d"
)

// deepDepths are the stacks measured; the first is the reference.
var deepDepths = []int{1, 10, 40}

func deepFileName(i int) string { return fmt.Sprintf("b%04d", i) }

// buildDeepStack makes root/lNN (lowers, topmost first), root/upper and
// root/work.
func buildDeepStack(root string, lowers int) (stack, error) {
	s := stack{Upper: filepath.Join(root, "upper"), Work: filepath.Join(root, "work")}
	for i := range lowers {
		s.Lowers = append(s.Lowers, filepath.Join(root, fmt.Sprintf("l%02d", i)))
	}
	for _, d := range append([]string{s.Upper, s.Work}, s.Lowers...) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return s, err
		}
	}
	bottom := s.Lowers[len(s.Lowers)-1]
	for i := range deepFiles {
		if err := writeFile(filepath.Join(bottom, deepDir, deepFileName(i)), []byte("bottom")); err != nil {
			return s, err
		}
	}
	for k, l := range s.Lowers[:len(s.Lowers)-1] {
		for j := range deepShadowed {
			if err := writeFile(filepath.Join(l, deepDir, deepFileName(k*deepShadowed+j)), []byte("higher")); err != nil {
				return s, err
			}
		}
	}
	return s, nil
}

// deepWorkloads: walk+getattr+clunk of a bottom-layer file never shadowed,
// and a whole listing of the merged d/.
func deepWorkloads() []workload {
	firstUnshadowed := (deepDepths[len(deepDepths)-1] - 1) * deepShadowed
	lookup := func(s *session, _ string) (func() (int64, error), func() error, error) {
		dir, err := s.walk(rootFid, deepDir)
		if err != nil {
			return nil, nil, err
		}
		i := 0
		op := func() (int64, error) {
			f := s.fid()
			name := deepFileName(firstUnshadowed + i%(deepFiles-firstUnshadowed))
			i++
			if _, err := s.c.Walk(dir, f, name); err != nil {
				return 0, fmt.Errorf("walk %s: %w", name, err)
			}
			if _, err := s.c.Getattr(f, p9wire.GetattrBasic); err != nil {
				return 0, err
			}
			return 1, s.c.Clunk(f)
		}
		return op, func() error { return s.c.Clunk(dir) }, nil
	}
	readdir := func(s *session, _ string) (func() (int64, error), func() error, error) {
		dir, err := s.walk(rootFid, deepDir)
		if err != nil {
			return nil, nil, err
		}
		op := func() (int64, error) {
			n, err := listDir(s, dir)
			if err == nil && n != deepFiles+2 {
				err = fmt.Errorf("readdir of %s: %d entries, want %d", deepDir, n, deepFiles+2)
			}
			return 1, err
		}
		return op, func() error { return s.c.Clunk(dir) }, nil
	}
	return []workload{
		{Key: "deeplookup", Name: "walk+getattr+clunk (bottom-layer file)", Unit: unitOps, Msize: metaMsize, Metadata: true, Setup: lookup},
		{Key: "deepreaddir", Name: "readdir 1000 merged (whole dir)", Unit: unitOps, Msize: metaMsize, Metadata: true, Cost: 5, Setup: readdir},
	}
}

// sectionDeep: union9p over 10 and 40 lowers against union9p over one, on
// one connection, alternating in the same run.
func sectionDeep(ctx context.Context, cl *cleanups, cfg config, binary, dir string, out io.Writer) error {
	servers := map[int]*server{}
	for _, n := range deepDepths {
		progress("deep: building a stack of %d lowers", n)
		st, err := buildDeepStack(filepath.Join(dir, fmt.Sprintf("stack%d", n)), n)
		if err != nil {
			return err
		}
		syncAll()
		srv, err := startUnion9p(ctx, cl, fmt.Sprintf("union9p-%dlowers", n), binary, st, dir)
		if err != nil {
			return err
		}
		defer srv.stop()
		servers[n] = srv
	}
	ref := deepDepths[0]
	var rows []comparison
	var names []string
	for _, w := range deepWorkloads() {
		for _, n := range deepDepths[1:] {
			progress("deep: %s, %d lowers vs %d", w.Name, n, ref)
			c, err := compare(ctx, cfg.Plan, servers[n], servers[ref], w, 1)
			if err != nil {
				return err
			}
			rows = append(rows, c)
			names = append(names, fmt.Sprintf("%d lowers", n))
		}
	}
	fmt.Fprintf(out, "\n== union9p: N lowers vs 1 lower, same merged tree (files in the bottom layer, d/ merged over every layer); ratio = N lowers/1 lower speed\n")
	for i := range rows {
		rows[i].Workload.Name = names[i] + ": " + rows[i].Workload.Name
	}
	printComparisons(out, "N", "1", rows, func(comparison) *target { return &target{Min: 0.7} })

	return nil
}
