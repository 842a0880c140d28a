package vhostuser

import (
	"io"
	"log"
	"runtime"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkRequest is one request's round trip through a device (kick,
// pop, handle, push), directly and with the keeper's in-flight log
// (inflight.go), which adds five atomic stores to the shared log per
// request: what a worker pays for being restartable.
func BenchmarkRequest(b *testing.B) {
	for _, withLog := range []bool{false, true} {
		name := "direct"
		if withLog {
			name = "inflight-log"
		}
		b.Run(name, func(b *testing.B) {
			h := &echo{}
			d := New(Config{Queues: 1, Logger: log.New(io.Discard, "", 0)}, h)
			f := newFrontServe(b, 1, d.Serve)
			if withLog {
				// Stop the queue, hand the device a log, start it again.
				f.send(msgGetVringBase, state(0, 0))
				f.readReply(msgGetVringBase)
				fd, err := newInflightFd(1)
				if err != nil {
					b.Fatal(err)
				}
				defer unix.Close(fd)
				f.sendFd(msgKeeperInflight, nil, fd)
				k, _ := unix.Eventfd(0, unix.EFD_CLOEXEC)
				f.kick[0] = k
				f.sendFd(msgSetVringKick, u64(0), k)
				f.ack()
				if d.inflight == nil {
					b.Fatal("no log")
				}
			}
			f.simple(0, 0, "ping", 16)
			u := f.ram[qbase(0)+usedOff:]
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f.publish(0, 0)
				for uint16(atomic.LoadUint32((*uint32)(unsafePointer(u)))>>16) != f.next[0] {
					runtime.Gosched()
				}
			}
		})
	}
}

// BenchmarkInflightLog is the log's own cost per request: a pop and a
// push logged.
func BenchmarkInflightLog(b *testing.B) {
	fd, err := newInflightFd(1)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	l, err := mapInflight(fd, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer l.unmap()
	q := l.queue(0)
	q.reset(0)
	for i := 0; i < b.N; i++ {
		head := uint16(i % 128)
		q.logPop(head, uint16(i+1))
		q.beginPush(head)
		q.endPush(head, uint16(i+1))
	}
}
