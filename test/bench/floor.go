package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// The floor: how fast can any server answer the null request over this
// machine's unix socket, measured with the bench's own client? The floor
// server (floorsrv/floor.c, built here with the system's C compiler) is a
// process of its own, as every server is (a thread switch between
// processes also switches address spaces, which is most of a round trip
// on a virtual machine), and does per request only what a server cannot
// avoid: read(2), the host call (fstatfs(2) for Tstatfs) and write(2).
//
// union9p's null request measured beside it (same run, alternating) says
// how much of a null request's time is the server's own, and so how far
// a faster server could move the ratio against diod.

//go:embed floorsrv/floor.c
var floorSource []byte

// startFloor builds and starts the floor server on a socket in dir,
// answering Tstatfs with fstatfs(2) of statDir. Without a C compiler it
// returns nil and no error: the floor is then not measured.
func startFloor(ctx context.Context, cl *cleanups, dir, statDir string) (*server, error) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		progress("servers: no C compiler (cc): the floor server is not measured")
		return nil, nil
	}
	src := filepath.Join(dir, "floor.c")
	bin := filepath.Join(dir, "floor")
	if err := os.WriteFile(src, floorSource, 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, cc, "-O2", "-pthread", "-o", bin, src).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the floor server: %v: %s", err, out)
	}
	sock := filepath.Join(dir, "floor.sock")
	return startServer(ctx, cl, "floor", sock, "", dir, bin, sock, statDir)
}

// printFloor measures the null request on union9p and on the floor server
// (one connection, alternating rounds) and prints both.
func printFloor(ctx context.Context, cfg config, fx *serverFixture, out io.Writer) error {
	if fx.Floor == nil {
		return nil
	}
	null := workloads()[0]
	progress("servers: %s on the floor server", null.Name)
	c, err := compare(ctx, cfg.Plan, fx.Union9p, fx.Floor, null, 1)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n== the floor: a C server that only reads, makes the host call and writes (own process), same client; ratio = union9p/floor speed\n")
	printComparisons(out, "union9p", "floor", []comparison{c}, func(comparison) *target { return nil })
	return nil
}
