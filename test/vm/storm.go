package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/union9p/union9p/test/p9wire"
	"golang.org/x/sys/unix"
)

// stormParent holds both storm directories: the guest's manifestDir, which
// the tree comparisons leave out.
const stormParent = ".vmtest"

// hostStorm is the host half of the storm check (guest half:
// test/vm/guest/storm.go): a host client on the socket `union9p qemu`
// serves the "host" union on (found under tmp), doing create/write/
// rename/unlink in .vmtest/hoststorm/ while the guest's 8 jobs do the same
// in .vmtest/gueststorm/, until the guest writes gueststorm/DONE; then it
// writes its own final tree into hoststorm/DONE for the guest to compare. wait
// returns the tree it left ("relpath sha", sorted) and its operation count.
func hostStorm(ctx context.Context, tmp string) (wait func() ([]string, int, error)) {
	type result struct {
		tree []string
		ops  int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		tree, ops, err := runHostStorm(ctx, tmp)
		done <- result{tree, ops, err}
	}()
	return func() ([]string, int, error) { r := <-done; return r.tree, r.ops, r.err }
}

func runHostStorm(ctx context.Context, tmp string) ([]string, int, error) {
	var c *p9wire.Client
	for c == nil {
		socks, _ := filepath.Glob(filepath.Join(tmp, "union9p-qemu-*", "host.sock"))
		if len(socks) == 1 {
			c, _ = p9wire.Dial("unix", socks[0], 65536)
		}
		if c == nil {
			select {
			case <-ctx.Done():
				return nil, 0, fmt.Errorf("no server socket for the host union under %s", tmp)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	defer c.Close()
	if _, err := c.Attach(0, "root", "", 0); err != nil {
		return nil, 0, err
	}
	if _, err := c.Walk(0, 1); err != nil {
		return nil, 0, err
	}
	// Under .vmtest, which the tree comparisons leave out; the guest may
	// have made it first.
	if _, err := c.Mkdir(1, stormParent, 0o755, 0); err != nil && err != unix.EEXIST {
		return nil, 0, fmt.Errorf("mkdir %s: %w", stormParent, err)
	}
	c.Clunk(1)
	if _, err := c.Walk(0, 1, stormParent); err != nil {
		return nil, 0, err
	}
	if _, err := c.Mkdir(1, "hoststorm", 0o755, 0); err != nil {
		return nil, 0, fmt.Errorf("mkdir hoststorm: %w", err)
	}
	c.Clunk(1)
	const dir = 2
	if _, err := c.Walk(0, dir, stormParent, "hoststorm"); err != nil {
		return nil, 0, err
	}
	model := map[string][]byte{}
	var names []string
	rnd := rand.New(rand.NewPCG(7, 7))
	ops := 0
	for ; ; ops++ {
		if _, err := c.Walk(0, 3, stormParent, "gueststorm", "DONE"); err == nil {
			c.Clunk(3)
			break
		}
		if ctx.Err() != nil {
			return nil, ops, fmt.Errorf("the guest never wrote gueststorm/DONE (%d host operations)", ops)
		}
		time.Sleep(2 * time.Millisecond)
		switch op := rnd.IntN(4); {
		case op == 0 || len(names) == 0 || (len(names) < 40 && op == 3):
			name := fmt.Sprintf("h%d", ops)
			data := []byte(strings.Repeat(fmt.Sprintf("host %d\n", ops), 1+rnd.IntN(100)))
			if _, err := c.Walk(dir, 4); err != nil {
				return nil, ops, err
			}
			if _, _, err := c.Lcreate(4, name, unix.O_WRONLY, 0o644, 0); err != nil {
				return nil, ops, fmt.Errorf("create %s: %w", name, err)
			}
			if _, err := c.Write(4, 0, data); err != nil {
				return nil, ops, fmt.Errorf("write %s: %w", name, err)
			}
			c.Clunk(4)
			model[name] = data
			names = append(names, name)
		case op == 1:
			k := rnd.IntN(len(names))
			to := fmt.Sprintf("m%d", ops)
			if err := c.Renameat(dir, names[k], dir, to); err != nil {
				return nil, ops, fmt.Errorf("rename %s: %w", names[k], err)
			}
			model[to] = model[names[k]]
			delete(model, names[k])
			names[k] = to
		default:
			k := rnd.IntN(len(names))
			if err := c.Unlinkat(dir, names[k], 0); err != nil {
				return nil, ops, fmt.Errorf("unlink %s: %w", names[k], err)
			}
			delete(model, names[k])
			names = append(names[:k], names[k+1:]...)
		}
	}
	tree := sums(model)
	if _, err := c.Walk(dir, 5); err != nil {
		return nil, ops, err
	}
	if _, _, err := c.Lcreate(5, "DONE", unix.O_WRONLY, 0o644, 0); err != nil {
		return nil, ops, err
	}
	if _, err := c.Write(5, 0, []byte(strings.Join(tree, "\n")+"\n")); err != nil {
		return nil, ops, err
	}
	c.Clunk(5)
	return tree, ops, nil
}

// sums renders files as the guest's treeSums does.
func sums(files map[string][]byte) []string {
	var out []string
	for name, data := range files {
		h := sha256.Sum256(data)
		out = append(out, name+" "+hex.EncodeToString(h[:8]))
	}
	sort.Strings(out)
	return out
}

// checkStorm compares, in the upper after the run, hoststorm/ with what the
// host client left and gueststorm/ with what the guest recorded in its DONE.
func checkStorm(upper string, hostTree []string) error {
	read := func(dir string) ([]string, error) {
		files := map[string][]byte{}
		err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			if rel == "DONE" {
				return nil
			}
			b, err := os.ReadFile(p)
			files[rel] = b
			return err
		})
		return sums(files), err
	}
	h, err := read(filepath.Join(upper, stormParent, "hoststorm"))
	if err != nil {
		return err
	}
	if strings.Join(h, "\n") != strings.Join(hostTree, "\n") {
		return fmt.Errorf("upper/hoststorm holds\n%s\nthe host client left\n%s", strings.Join(h, "\n"), strings.Join(hostTree, "\n"))
	}
	g, err := read(filepath.Join(upper, stormParent, "gueststorm"))
	if err != nil {
		return err
	}
	want, err := os.ReadFile(filepath.Join(upper, stormParent, "gueststorm", "DONE"))
	if err != nil {
		return err
	}
	if got := strings.Join(g, "\n") + "\n"; got != string(want) {
		return fmt.Errorf("upper/gueststorm holds\n%sthe guest left\n%s", got, want)
	}
	return nil
}
