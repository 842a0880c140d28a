package p9srv

import (
	"runtime"
	"time"
)

// yieldEvery is how long a reader serving its connection from its own
// thread (fdConn.readWait's blocking read) runs before it yields to Go's
// scheduler once.
//
// Why: Go's system monitor (sysmon) takes a goroutine that has run for
// 10 ms without being rescheduled for a CPU hog. Such a reader never is
// rescheduled (it goes from its read to its request and back, never
// parking), so every 10 ms sysmon preempts it, takes its processor away
// while it sits in the system call, and restarts its own polling at 20 µs: it
// then woke about once per request (1.6 nanosleeps per null request under
// strace, against 4 system calls for the request itself), each a thread
// switch on a machine where those are the dearest thing a request does.
// A yield now and then (runtime.Gosched) counts as a reschedule, so
// sysmon sees nothing to take and backs off to sleeping 10 ms at a time.
// A yield costs a wake-up of another thread, which often takes the
// reader over (two futex calls): once per 5 ms, against one wake-up per
// request before.
const yieldEvery = 5 * time.Millisecond

// maybeYield yields to the scheduler when the caller (a connection's
// reader) has run for yieldEvery since its last yield; last is the
// reader's own record of that time (Unix ns), now the current time.
func maybeYield(last *int64, now int64) {
	if now-*last < int64(yieldEvery) {
		return
	}
	*last = now
	runtime.Gosched()
}
