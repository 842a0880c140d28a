package p9srv

import (
	"sync"
	"sync/atomic"
	"time"
)

// watchdog starts a new reader for a connection whose reader has been
// handling a request itself for longer than handoffAfter while the client
// has sent more (see conn), so a slow request never holds up the
// connection's others for long. It runs
// only while some reader handles a request: it ticks every watchTick and
// ends after idleTicks ticks with nothing to watch.
type watchdog struct {
	srv     *Server
	running atomic.Bool
	epoch   time.Time
	once    sync.Once
}

// idleTicks: every tick wakes a thread (about two system calls and a
// thread switch), so an idle watchdog ends soon; starting it again costs
// one goroutine. At 200 (0.2 s) the ticks after a connection's Tattach
// alone outnumbered a few hundred null requests' own system calls.
const (
	watchTick    = time.Millisecond
	handoffAfter = time.Millisecond
	idleTicks    = 20
)

// begin records that c's reader starts handling a request itself and
// returns the stamp that c.inl holds meanwhile.
func (w *watchdog) begin(c *conn) int64 {
	w.once.Do(func() { w.epoch = time.Now() })
	start := int64(time.Since(w.epoch)) | 1 // never 0
	c.inl.Store(start)
	if !w.running.Load() && w.running.CompareAndSwap(false, true) {
		go w.run()
	}
	return start
}

func (w *watchdog) run() {
	idle := 0
	for {
		time.Sleep(watchTick)
		if w.check() {
			idle = 0
			continue
		}
		if idle++; idle < idleTicks {
			continue
		}
		w.running.Store(false)
		// A reader that began after the last check saw running set and
		// did not start a watchdog: look once more.
		if !w.check() || !w.running.CompareAndSwap(false, true) {
			return
		}
		idle = 0
	}
}

// check hands reading over where a reader is stuck in a request; it
// reports whether any reader was handling a request.
func (w *watchdog) check() bool {
	s := w.srv
	now := int64(time.Since(w.epoch))
	busy := false
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		start := c.inl.Load()
		if start == 0 {
			continue
		}
		busy = true
		if now-start < int64(handoffAfter) || !c.pending() {
			continue
		}
		c.reads.Add(1)
		if c.inl.CompareAndSwap(start, 0) {
			go c.readLoop()
		} else {
			c.reads.Done()
		}
	}
	return busy
}
