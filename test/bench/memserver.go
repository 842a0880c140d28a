package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/union9p/union9p/p9srv"
	"github.com/union9p/union9p/union"
)

// memServerEnv, when set (to lower, upper, work and socket path separated
// by newlines), makes this program the server of the memory section
// instead of the benchmark: p9srv serving the union on the socket, and on
// stdin a line "stat" answered on stdout with the live heap after a full
// GC and the number of goroutines. It ends when stdin closes.
const memServerEnv = "UNION9P_BENCH_MEMSERVER"

func init() {
	if spec := os.Getenv(memServerEnv); spec != "" {
		os.Exit(runMemServer(spec))
	}
}

func runMemServer(spec string) int {
	parts := strings.Split(spec, "\n")
	if len(parts) != 4 {
		fmt.Fprintln(os.Stderr, "memory server: bad spec")
		return 2
	}
	u, err := union.Open(union.Options{Lowers: []string{parts[0]}, Upper: parts[1], Workdir: parts[2]})
	if err != nil {
		fmt.Fprintln(os.Stderr, "memory server:", err)
		return 1
	}
	defer u.Close()
	srv, err := p9srv.New(p9srv.Config{Union: u})
	if err != nil {
		fmt.Fprintln(os.Stderr, "memory server:", err)
		return 1
	}
	ln, err := p9srv.Listen("unix:" + parts[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, "memory server:", err)
		return 1
	}
	go srv.Serve(context.Background(), ln)
	answerStats()
	srv.Shutdown(context.Background())
	return 0
}

// answerStats says "ready", then answers each line "stat" on stdin with
// the live heap after a full GC and the number of goroutines, until stdin
// closes. It is the protocol of the memory and tenants sections' servers.
func answerStats() {
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() != "stat" {
			continue
		}
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("%d %d\n", ms.HeapAlloc, runtime.NumGoroutine())
	}
}
