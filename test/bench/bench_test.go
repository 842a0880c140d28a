package main

// Go benchmarks of the same workloads, with the union9p server in this
// process (p9srv over package union, on a unix socket), so that the
// standard tools can profile it:
//
//	go test -run '^$' -bench 'Servers/.*/union9p' -benchmem \
//	    -cpuprofile /tmp/cpu.out -memprofile /tmp/mem.out ./test/bench
//	go tool pprof -top -cum -ignore 'buildStack|writeSeqData' /tmp/cpu.out
//	go tool pprof -sample_index=alloc_objects -top -focus handleRequest /tmp/mem.out
//
// The profile includes building the trees (hence -ignore). The client runs
// in the same process, so CPU and allocation figures include it. The diod sub-benchmarks measure the client alone (diod is a
// separate process): union9p's allocs/op minus diod's is the server's.
// These are for profiles; the figures to compare are the program's.

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/union9p/union9p/p9srv"
	"github.com/union9p/union9p/union"
)

func BenchmarkServers(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root (whiteouts, ownership passthrough, diod as any uid)")
	}
	dir := b.TempDir()
	seq := filepath.Join(dir, "seqdata")
	if err := writeSeqData(seq); err != nil {
		b.Fatal(err)
	}
	layered, err := buildStack(filepath.Join(dir, "union"), 3, seq)
	if err != nil {
		b.Fatal(err)
	}
	servers := []*server{startInProcess(b, layered, dir)}
	if _, err := exec.LookPath("diod"); err == nil {
		plain, err := buildStack(filepath.Join(dir, "plain"), 1, seq)
		if err != nil {
			b.Fatal(err)
		}
		var cl cleanups
		b.Cleanup(cl.run)
		d, err := startDiod(context.Background(), &cl, plain.Dir(), dir)
		if err != nil {
			b.Fatal(err)
		}
		servers = append(servers, d)
	}
	for _, w := range workloads() {
		b.Run(w.Key, func(b *testing.B) {
			for _, srv := range servers {
				b.Run(srv.Name, func(b *testing.B) { benchWorkload(b, srv, w) })
			}
		})
	}
}

// benchWorkload runs w's operation b.N times on one session.
func benchWorkload(b *testing.B, srv *server, w workload) {
	s, err := openSession(srv, w.Msize)
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	op, teardown, err := w.Setup(s, strings.ReplaceAll(b.Name(), "/", "_")+time.Now().Format("150405.000000000"))
	if err != nil {
		b.Fatal(err)
	}
	defer teardown()
	var units int64
	for b.Loop() {
		n, err := op()
		if err != nil {
			b.Fatal(err)
		}
		units += n
	}
	if w.Unit == unitBytes {
		b.ReportMetric(float64(units)/b.Elapsed().Seconds()/(1<<20), "MiB/s")
	}
}

// startInProcess serves st with p9srv in this process on a unix socket.
func startInProcess(b *testing.B, st stack, dir string) *server {
	u, err := union.Open(union.Options{Lowers: st.Lowers, Upper: st.Upper, Workdir: st.Work})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := p9srv.New(p9srv.Config{Union: u})
	if err != nil {
		u.Close()
		b.Fatal(err)
	}
	sock := filepath.Join(dir, "union9p.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		u.Close()
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), ln) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; err != nil && !errors.Is(err, p9srv.ErrServerClosed) {
			b.Error(err)
		}
		u.Close()
	})
	return &server{Name: "union9p", Sock: sock}
}
