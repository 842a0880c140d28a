package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// The storm: 8 guest processes' worth of parallel create/write/rename/unlink
// (goroutines, each its own syscalls through the guest kernel) in
// .vmtest/gueststorm/ of the host union, while a host client
// (test/vm/storm.go) does the same in .vmtest/hoststorm/ of the same union
// (under manifestDir, which the tree comparisons leave out). Each side writes its final
// tree into DONE in its directory; each then checks that it sees the
// other's tree exactly as the other left it.
const (
	stormJobs = 8
	stormOps  = 150
)

func (r *runner) storm(root string) {
	r.step("host", "storm-parallel-with-host-client", func() error {
		dir := filepath.Join(root, manifestDir, "gueststorm")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		var wg sync.WaitGroup
		errs := make([]error, stormJobs)
		for j := range stormJobs {
			wg.Add(1)
			go func() { defer wg.Done(); errs[j] = stormJob(filepath.Join(dir, fmt.Sprintf("j%d", j)), j) }()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		mine, err := treeSums(dir)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "DONE"), []byte(strings.Join(mine, "\n")+"\n"), 0o644); err != nil {
			return err
		}
		// The host client stops when it sees gueststorm/DONE and then
		// writes its own.
		hostDone := filepath.Join(root, manifestDir, "hoststorm", "DONE")
		deadline := time.Now().Add(90 * time.Second)
		var want []byte
		for {
			if want, err = os.ReadFile(hostDone); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the host client never wrote hoststorm/DONE: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		seen, err := treeSums(filepath.Join(root, manifestDir, "hoststorm"))
		if err != nil {
			return err
		}
		if got := strings.Join(seen, "\n") + "\n"; got != string(want) {
			return fmt.Errorf("the guest sees hoststorm as\n%s\nthe host client left\n%s", got, want)
		}
		return nil
	})
}

// stormJob runs stormOps random operations in its own directory.
func stormJob(dir string, seed int) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	rnd := rand.New(rand.NewPCG(uint64(seed), 5))
	var files []string
	for i := range stormOps {
		switch op := rnd.IntN(4); {
		case op == 0 || len(files) == 0:
			name := fmt.Sprintf("f%d", i)
			data := []byte(strings.Repeat(fmt.Sprintf("%s %d\n", dir, i), 1+rnd.IntN(200)))
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				return err
			}
			files = append(files, name)
		case op == 1:
			k := rnd.IntN(len(files))
			to := fmt.Sprintf("r%d", i)
			if err := os.Rename(filepath.Join(dir, files[k]), filepath.Join(dir, to)); err != nil {
				return err
			}
			files[k] = to
		case op == 2:
			k := rnd.IntN(len(files))
			if err := os.Remove(filepath.Join(dir, files[k])); err != nil {
				return err
			}
			files = append(files[:k], files[k+1:]...)
		default:
			k := rnd.IntN(len(files))
			f, err := os.OpenFile(filepath.Join(dir, files[k]), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			_, err = f.WriteString("appended\n")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// treeSums lists every file under dir but DONE as "relpath sha256", sorted.
func treeSums(dir string) ([]string, error) {
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "DONE" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		out = append(out, rel+" "+hex.EncodeToString(h[:8]))
		return nil
	})
	sort.Strings(out)
	return out, err
}
