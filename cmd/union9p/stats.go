package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"syscall"
)

// logStatsOnSignal logs the server's live heap and goroutine count each
// time it receives SIGUSR1, until ctx ends: how an operator (and `make
// load`) sees whether memory stays flat under load. The open-fd count is
// in /proc/PID/fd, which the sandboxed server itself may not read.
func logStatsOnSignal(ctx context.Context, log *slog.Logger) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	go func() {
		defer signal.Stop(ch)
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				metrics.Read(sample)
				var live uint64
				if sample[0].Value.Kind() == metrics.KindUint64 {
					live = sample[0].Value.Uint64()
				}
				log.Info("stats", "heap_live_bytes", live, "goroutines", runtime.NumGoroutine())
			}
		}
	}()
}
