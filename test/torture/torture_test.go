package torture

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/union9p/union9p/test/p9wire"
	"github.com/union9p/union9p/test/vm/fixture"
)

const (
	workers     = 3
	resetEvery  = 40                     // rounds between fresh uppers (copy-ups of big files again)
	maxKillWait = 300 * time.Millisecond // the kill comes at a random moment up to this
)

// TestTorture kills the server at random moments of a mixed workload and
// checks the layers after each restart (see the package comment).
// UNION9P_TORTURE_KILLS sets the number of kill points (default 12),
// UNION9P_TORTURE_SEED the seed.
func TestTorture(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the torture test runs as root (overlayfs mounts, ownership)")
	}
	kills := envInt(t, "UNION9P_TORTURE_KILLS", 12)
	seed := uint64(envInt(t, "UNION9P_TORTURE_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("%d kill points, seed %d (UNION9P_TORTURE_SEED to replay the schedule; timing still varies)", kills, seed)
	rnd := rand.New(rand.NewPCG(seed, 7))

	bin := buildServer(t)
	l := makeLayers(t)
	lowersBefore, err := l.lowerManifest()
	must(t, err)
	logPath := filepath.Join(l.root, "server.log")

	sealed := map[string]string{}
	var unexpected []string
	srv, err := startServer(bin, l, logPath)
	must(t, err)
	defer func() { srv.kill() }()

	totalOps, failures := 0, 0
	fail := func(round int, what string, err error) {
		failures++
		t.Errorf("kill point %d: %s: %v", round, what, err)
	}
	start := time.Now()
	for round := 1; round <= kills; round++ {
		if round%resetEvery == 0 {
			srv.kill()
			l.resetUpper(t)
			sealed = map[string]string{}
			if srv, err = startServer(bin, l, logPath); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		ws := make([]*worker, workers)
		for i := range ws {
			c, err := p9wire.Dial("unix", srv.sock, 1<<17)
			if err != nil {
				t.Fatalf("kill point %d: dial: %v", round, err)
			}
			ws[i] = &worker{c: c, rnd: rand.New(rand.NewPCG(rnd.Uint64(), uint64(i))), l: l,
				dir: fmt.Sprintf("r%dw%d", round, i), next: 1, mu: &mu, sealed: sealed, unexpected: &unexpected}
			wg.Add(1)
			go func() { defer wg.Done(); ws[i].run() }()
		}
		time.Sleep(time.Duration(rnd.Int64N(int64(maxKillWait))))
		srv.kill()
		wg.Wait()
		for _, w := range ws {
			w.c.Close()
			totalOps += w.ops
		}

		if srv, err = startServer(bin, l, logPath); err != nil {
			t.Fatalf("kill point %d: restart: %v", round, err)
		}
		if err := l.checkWorkdir(); err != nil {
			fail(round, "workdir", err)
		}
		if err := l.checkSealed(sealed); err != nil {
			fail(round, "fsync", err)
		}
		if err := l.checkWhole(); err != nil {
			fail(round, "copy-up", err)
		}
		if err := l.checkOverlay(srv.sock); err != nil {
			fail(round, "overlayfs view", err)
		}
		if round%10 == 0 || round == kills {
			after, err := l.lowerManifest()
			if err == nil {
				err = fixture.DiffError(fixture.Diff(lowersBefore, after, "before", "after"))
			}
			if err != nil {
				fail(round, "lowers", err)
			}
		}
		if len(unexpected) > 0 {
			fail(round, "unexpected errors", fmt.Errorf("%q", unexpected))
			unexpected = nil
		}
		if failures > 20 {
			t.Fatalf("stopping after %d failures (server log %s)", failures, logPath)
		}
		if round%100 == 0 {
			t.Logf("%d kill points, %d operations, %d fsync'd files checked, %v", round, totalOps, len(sealed), time.Since(start).Round(time.Second))
		}
	}
	fmt.Printf("torture: %d kill points, %d operations answered before the kills, %d failures, %v\n",
		kills, totalOps, failures, time.Since(start).Round(time.Second))
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a number", name, s)
	}
	return n
}
