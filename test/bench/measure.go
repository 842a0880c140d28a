package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// plan says how long and how often each figure is measured.
type plan struct {
	Rounds   int           // timed rounds per server and case
	Duration time.Duration // length of one timed round
	Warmup   time.Duration // untimed round per server before the first
}

// measurement is the figure of one server for one case.
type measurement struct {
	Rates []float64 // units per second, one per round
	Msize uint32    // what the server granted
	// CPU nanoseconds per unit, one per round (cputime.go): the server
	// process's, and the client's (this process).
	ServerCPU, ClientCPU []float64
}

// Median returns the median rate.
func (m measurement) Median() float64 { return median(m.Rates) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	r := slices.Clone(v)
	slices.Sort(r)
	if len(r)%2 == 1 {
		return r[len(r)/2]
	}
	return (r[len(r)/2-1] + r[len(r)/2]) / 2
}

// Spread returns (max-min)/median of the rounds, a noise indicator.
func (m measurement) Spread() float64 {
	med := m.Median()
	if med == 0 {
		return 0
	}
	return (slices.Max(m.Rates) - slices.Min(m.Rates)) / med
}

// comparison is one case measured on two servers.
type comparison struct {
	Workload workload
	Conns    int
	A, B     measurement
}

// Ratio is A's speed over B's: above 1, A is faster.
func (c comparison) Ratio() float64 {
	if c.B.Median() == 0 {
		return 0
	}
	return c.A.Median() / c.B.Median()
}

// compareEach compares a and b on every workload keep accepts, at each
// connection count of cfg, in report order; label names the rows in the
// progress lines.
func compareEach(ctx context.Context, cfg config, a, b *server, label string, keep func(workload) bool) ([]comparison, error) {
	var rows []comparison
	for _, w := range workloads() {
		if !keep(w) {
			continue
		}
		for _, n := range cfg.Conns {
			progress("%s: %s, %d conns", label, w.Name, n)
			c, err := compare(ctx, cfg.Plan, a, b, w, n)
			if err != nil {
				return nil, err
			}
			rows = append(rows, c)
		}
	}
	return rows, nil
}

// compare measures w with conns parallel connections on a and b in
// alternating rounds (a b, b a, a b, ... so that drift in the machine's
// load hits both alike) and returns every round's rate.
func compare(ctx context.Context, p plan, a, b *server, w workload, conns int) (comparison, error) {
	c := comparison{Workload: w, Conns: conns}
	nonce := time.Now().UnixNano() // names created by this case are unique
	seq := 0
	round := func(srv *server, d time.Duration, m *measurement) error {
		seq++
		rate, msize, cpu, err := runRound(ctx, srv, w, conns, d, fmt.Sprintf("%s-%x-%d", srv.Name, nonce, seq))
		if err != nil {
			return fmt.Errorf("%s on %s, %d conns: %w", w.Name, srv.Name, conns, err)
		}
		if m != nil {
			m.Rates = append(m.Rates, rate)
			m.Msize = msize
			m.ServerCPU = append(m.ServerCPU, cpu[0])
			m.ClientCPU = append(m.ClientCPU, cpu[1])
		}
		return nil
	}
	if p.Warmup > 0 {
		if err := round(a, p.Warmup, nil); err != nil {
			return c, err
		}
		if err := round(b, p.Warmup, nil); err != nil {
			return c, err
		}
	}
	for r := range p.Rounds {
		first, second, mf, ms := a, b, &c.A, &c.B
		if r%2 == 1 {
			first, second, mf, ms = b, a, &c.B, &c.A
		}
		if err := round(first, p.Duration, mf); err != nil {
			return c, err
		}
		if err := round(second, p.Duration, ms); err != nil {
			return c, err
		}
	}
	return c, nil
}

// runRound opens conns sessions to srv, sets w up on each (untimed), then
// runs w's operation on all of them at once until d has passed and
// returns the total units per second, the msize granted and the server's
// and the client's CPU nanoseconds per unit. Each session
// finishes the operation it is in when time is up; the rate uses the time
// until the last one finished.
func runRound(ctx context.Context, srv *server, w workload, conns int, d time.Duration, tag string) (float64, uint32, [2]float64, error) {
	type worker struct {
		s        *session
		op       func() (int64, error)
		teardown func() error
		units    int64
		err      error
	}
	workers := make([]*worker, conns)
	defer func() {
		for _, wk := range workers {
			if wk == nil {
				continue
			}
			if wk.teardown != nil {
				wk.teardown()
			}
			wk.s.close()
		}
	}()
	for i := range workers {
		s, err := openSession(srv, w.Msize)
		if err != nil {
			return 0, 0, [2]float64{}, err
		}
		wk := &worker{s: s}
		workers[i] = wk
		wk.op, wk.teardown, err = w.Setup(s, fmt.Sprintf("%s-%d", tag, i))
		if err != nil {
			return 0, 0, [2]float64{}, fmt.Errorf("setup: %w", err)
		}
	}

	var wg sync.WaitGroup
	clock := cpuClock{pid: srv.pid()}
	cpu0 := clock.read()
	start := time.Now()
	deadline := start.Add(d)
	for _, wk := range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				n, err := wk.op()
				if err != nil {
					wk.err = err
					return
				}
				wk.units += n
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1 := clock.read()
	if err := ctx.Err(); err != nil {
		return 0, 0, [2]float64{}, err
	}
	var total int64
	for _, wk := range workers {
		if wk.err != nil {
			return 0, 0, [2]float64{}, wk.err
		}
		total += wk.units
	}
	sc, cc := perUnit(cpu0, cpu1, float64(total))
	return float64(total) / elapsed.Seconds(), workers[0].s.c.Msize(), [2]float64{sc, cc}, nil
}
