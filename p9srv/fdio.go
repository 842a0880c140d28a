package p9srv

import (
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fdConn serves a connection's socket with plain system calls on a
// descriptor of its own, outside Go's network poller, waiting for it on
// the calling thread for a moment (a blocking read with a timeout, see
// blockingRead) before falling back to the poller.
//
// Why: a client that waits on each answer sends its next request a few
// tens of microseconds after the response went out. Through the network
// poller every such request costs a failed read, parking the reader,
// epoll_pwait in the scheduler and a thread switch, and on a unix socket
// every response the client reads wakes the poller once more (the
// socket's "writable" edge). A thread switch is the dearest thing a
// request does here (about as much as the request itself on a virtual
// machine). Waiting in a blocking read on the reader's own thread wakes
// that very thread: a request is read, the work, write, with no other
// thread involved. A connection quiet for longer than spinWait waits in the
// poller instead (through a short-lived duplicate descriptor registered
// for that wait only), so an idle connection holds no thread.
//
// The wrapped connection is closed at once (that takes its descriptor out
// of the poller); its socket lives on in fd until Close. Close shuts the
// socket down, which ends any wait at once, then closes fd when no call
// uses it any more. Whoever closes the wrapped connection to end a client
// (CloseTenant) must call closeClient instead.
//
// Read is called by one goroutine at a time (the connection's reader),
// Write by one at a time (under conn.writeMu); the two may overlap.
type fdConn struct {
	fd     int
	orig   io.Closer
	mu     sync.RWMutex // held for reading by every call that uses fd; Close takes it to close fd
	closed atomic.Bool
	once   sync.Once

	flags int // the descriptor's status flags, O_NONBLOCK set (as taken over)

	// The reader's state (readWait); Close uses it once no call runs.
	slot      bool     // holds a poll slot
	blocking  bool     // the reader cleared O_NONBLOCK (see blockingRead)
	lastYield int64    // when the reader last yielded (maybeYield)
	rpf       *os.File // registered with the poller, or nil
}

// spinWait is how long a reader or writer waits in poll(2) before handing
// the wait to the network poller: long enough to cover a client's turn-
// around between requests, short enough that idle connections do not pin
// threads.
const spinWait = 2 * time.Millisecond

// noPoll is set once poll(2) failed for a reason other than EINTR (a
// sandbox that does not allow it): every wait then goes to the poller.
var noPoll atomic.Bool

// wrapped maps a wrapped connection to its fdConn, for closeClient.
var wrapped sync.Map

// newFDConn takes over rw's socket when rw is a socket the poller serves;
// otherwise it returns nil and rw is left as it is.
func newFDConn(rw io.ReadWriteCloser) *fdConn {
	sc, ok := rw.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	fd, flags := -1, 0
	if err := rc.Control(func(ofd uintptr) {
		// Only non-blocking sockets: a blocking descriptor (a pipe, a
		// file) is left to rw, which knows how to wait for it.
		fl, err := unix.FcntlInt(ofd, unix.F_GETFL, 0)
		if err != nil || fl&unix.O_NONBLOCK == 0 {
			return
		}
		if _, err := unix.GetsockoptInt(int(ofd), unix.SOL_SOCKET, unix.SO_TYPE); err != nil {
			return
		}
		if nfd, err := unix.FcntlInt(ofd, unix.F_DUPFD_CLOEXEC, 0); err == nil {
			fd, flags = nfd, fl
		}
	}); err != nil || fd < 0 {
		return nil
	}
	f := &fdConn{fd: fd, orig: rw, flags: flags}
	// Bound every blocking read and write (blockingRead): a read waits
	// for the client's next request for spinWait at most, a write for
	// room for as long, before the wait goes to the poller.
	tv := unix.NsecToTimeval(int64(spinWait))
	if unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv) != nil ||
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv) != nil {
		f.flags = -1 // no timeouts: never block
	}
	wrapped.Store(rw, f)
	rw.Close() // out of the poller; the socket stays open through fd
	return f
}

// closeClient closes nc, a connection that may be served, ending its
// service: through its fdConn when it has one.
func closeClient(nc io.Closer) error {
	if f, ok := wrapped.Load(nc); ok {
		return f.(*fdConn).Close()
	}
	return nc.Close()
}

// Read reads at least one byte into p, waiting for the client as above.
func (f *fdConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := f.do(p, unix.POLLIN, unix.Read)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p, waiting for room as above.
func (f *fdConn) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := f.do(p[done:], unix.POLLOUT, unix.Write)
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// do runs op (read or write) on the socket once it is ready for event.
func (f *fdConn) do(p []byte, event int16, op func(int, []byte) (int, error)) (int, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed.Load() {
		return 0, os.ErrClosed
	}
	// A write usually has room: try it first. A read usually comes before
	// the client sent its next request (it was waiting for the answer just
	// written): poll first.
	if event == unix.POLLOUT {
		if n, err := retryEINTR(op, f.fd, p); err != unix.EAGAIN {
			return max(n, 0), err
		}
	}
	wait := spinWait
	for {
		if event == unix.POLLIN {
			if n, err, ok := f.readWait(p, wait); ok {
				return n, err
			}
		} else if n, err, ok := f.pollThenDo(p, event, op, wait); ok {
			return n, err
		}
		n, err := f.waitInPoller(p, event, op)
		if err != unix.EMFILE && err != unix.ENFILE {
			return n, err
		}
		// No descriptor for the poller (the process is out of them):
		// wait here, in longer turns, until one is free.
		if f.closed.Load() {
			return 0, os.ErrClosed
		}
		wait = 50 * time.Millisecond
		if noPoll.Load() {
			time.Sleep(wait)
		}
	}
}

// readWait is the reader's wait: in a blocking read (blockingRead; in
// poll(2) where the socket cannot block) while the connection holds the
// process's poll slot, else in the poller through f.rpf, a duplicate
// descriptor kept registered while the connection waits there. Only the
// reader calls it. ok is false when the caller must wait in the poller
// itself (no descriptor for f.rpf, or quiet for longer than wait).
//
// One connection at a time waits on its own thread, and only while it is the
// only one sending (see noteRead): with several busy connections the
// threads parked in system calls would wake one by one, a thread switch each,
// where the poller wakes once for all and runs their readers back to
// back on one thread; and every thread in a system call holds a Go
// processor that the scheduler must take back. Measured with four busy
// connections on two processors: 0.8 thread switches per request through
// the poller, 1.3 with one connection in poll(2), 1.6 with two.
func (f *fdConn) readWait(p []byte, wait time.Duration) (n int, err error, ok bool) {
	now := time.Now().UnixNano()
	alone := now >= sharedUntil.Load()
	if f.slot && !alone {
		f.slot = false
		pollSlot.Store(false)
	}
	if alone && !noPoll.Load() && (f.slot || pollSlot.CompareAndSwap(false, true)) {
		f.slot = true
		if f.rpf != nil {
			f.rpf.Close()
			f.rpf = nil
		}
		maybeYield(&f.lastYield, now)
		n, err, ok := f.blockingRead(p)
		if !ok && f.flags < 0 {
			// The socket cannot be made blocking: wait in poll(2).
			n, err, ok = f.pollThenDo(p, unix.POLLIN, unix.Read, wait)
		}
		if ok {
			f.noteRead()
			return n, err, true
		}
		f.slot = false
		pollSlot.Store(false)
		return 0, nil, false
	}
	f.setBlocking(false)
	if f.rpf == nil {
		dfd, err := unix.FcntlInt(uintptr(f.fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return 0, nil, false
		}
		f.rpf = os.NewFile(uintptr(dfd), "9p-client") // non-blocking: registered with the poller
	}
	rc, err := f.rpf.SyscallConn()
	if err != nil {
		return 0, err, true
	}
	err = rc.Read(func(fd uintptr) bool {
		n, err = retryEINTR(unix.Read, int(fd), p)
		return err != unix.EAGAIN
	})
	f.noteRead()
	return max(n, 0), err, true
}

// blockingRead is the reader's wait while it holds the poll slot: one
// read(2) on the descriptor made blocking, which the socket's receive
// timeout (SO_RCVTIMEO, spinWait) ends if the client stays quiet. ok is
// false when it timed out or cannot block (the caller then waits
// otherwise); the descriptor is then non-blocking again.
//
// Why not poll(2) and then read(2): every kernel entry is dear on a
// virtual machine (most of a null request's time is spent entering and
// leaving the kernel), and a blocking read is one entry where those were
// two. O_NONBLOCK belongs to the open file description, which the
// duplicates registered with the poller share: so the reader clears it
// only while it holds the slot and sets it again before it registers a
// duplicate (readWait), and a writer that must wait in the poller sets it
// (waitInPoller), which makes the reader's next read return EAGAIN and
// the reader leave the slot. A blocking write waits for room for
// SO_SNDTIMEO at most, after which the writer waits as before (do).
func (f *fdConn) blockingRead(p []byte) (n int, err error, ok bool) {
	if !f.setBlocking(true) {
		return 0, nil, false
	}
	n, err = retryEINTR(unix.Read, f.fd, p)
	if err == unix.EAGAIN {
		f.setBlocking(false)
		return 0, nil, false
	}
	return max(n, 0), err, true
}

// setBlocking clears (on) or sets O_NONBLOCK on the descriptor where the
// reader's record says it is not so already; it reports whether the
// descriptor is now as asked. Only the reader calls it.
func (f *fdConn) setBlocking(on bool) bool {
	if f.blocking == on {
		return true
	}
	if f.flags < 0 {
		return !on
	}
	fl := f.flags
	if on {
		fl &^= unix.O_NONBLOCK
	}
	if _, err := unix.FcntlInt(uintptr(f.fd), unix.F_SETFL, fl); err != nil {
		if on {
			f.flags = -1 // not allowed: never block again
		}
		return !on
	}
	f.blocking = on
	return true
}

var (
	pollSlot    atomic.Bool            // a connection's reader waits in poll(2)
	lastReader  atomic.Pointer[fdConn] // the connection that read last
	lastReadAt  atomic.Int64           // when (Unix ns)
	sharedUntil atomic.Int64           // until when (Unix ns) no connection may wait in poll(2)
)

// sharedHold is how long after two connections read within spinWait of
// each other no connection waits in poll(2).
const sharedHold = 10 * time.Millisecond

// noteRead records that f's reader got bytes, and whether another
// connection is busy at the same time.
func (f *fdConn) noteRead() {
	now := time.Now().UnixNano()
	if prev := lastReader.Swap(f); prev != f && prev != nil && now-lastReadAt.Load() < int64(spinWait) {
		sharedUntil.Store(now + int64(sharedHold))
	}
	lastReadAt.Store(now)
}

// pollThenDo waits up to wait in poll(2) for event and then does op; ok
// is false when the socket was not ready in time (or poll(2) is not
// allowed).
func (f *fdConn) pollThenDo(p []byte, event int16, op func(int, []byte) (int, error), wait time.Duration) (n int, err error, ok bool) {
	if noPoll.Load() {
		return 0, nil, false
	}
	deadline := time.Now().Add(wait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return 0, nil, false
		}
		pfd := []unix.PollFd{{Fd: int32(f.fd), Events: event}}
		k, err := unix.Poll(pfd, int((left+time.Millisecond-1)/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// Not allowed (a seccomp filter) or not there: use the
			// poller from now on rather than fail every time.
			noPoll.Store(true)
			return 0, nil, false
		}
		if k == 0 {
			return 0, nil, false
		}
		if n, err := retryEINTR(op, f.fd, p); err != unix.EAGAIN {
			return max(n, 0), err, true
		}
	}
}

// waitInPoller does op once the socket is ready, waiting in Go's network
// poller through a duplicate descriptor registered for this wait only.
func (f *fdConn) waitInPoller(p []byte, event int16, op func(int, []byte) (int, error)) (int, error) {
	dfd, err := unix.FcntlInt(uintptr(f.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	// The reader may have made the socket blocking (blockingRead): the
	// poller needs it non-blocking, and the reader notices at its next
	// read.
	unix.SetNonblock(dfd, true)
	file := os.NewFile(uintptr(dfd), "9p-client") // non-blocking: registered with the poller
	defer file.Close()
	rc, err := file.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var opErr error
	try := func(fd uintptr) bool {
		n, opErr = retryEINTR(op, int(fd), p)
		return opErr != unix.EAGAIN
	}
	if event == unix.POLLIN {
		err = rc.Read(try)
	} else {
		err = rc.Write(try)
	}
	if err != nil {
		return 0, err
	}
	return max(n, 0), opErr
}

func retryEINTR(op func(int, []byte) (int, error), fd int, p []byte) (int, error) {
	for {
		n, err := op(fd, p)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// Close ends the connection: it shuts the socket down, which ends every
// wait on it, and closes the descriptor once no call uses it.
func (f *fdConn) Close() error {
	f.once.Do(func() {
		f.closed.Store(true)
		unix.Shutdown(f.fd, unix.SHUT_RDWR)
		f.mu.Lock()
		if f.rpf != nil {
			f.rpf.Close()
		}
		if f.slot {
			pollSlot.Store(false)
		}
		lastReader.CompareAndSwap(f, nil)
		unix.Close(f.fd)
		f.mu.Unlock()
		wrapped.Delete(f.orig)
	})
	return nil
}

// stopReading ends the read side: a Read waiting now or later returns
// io.EOF once the bytes already received are read; writes go on.
func (f *fdConn) stopReading() {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if !f.closed.Load() {
		unix.Shutdown(f.fd, unix.SHUT_RD)
	}
}

// pending reports whether the client has sent bytes not read yet.
func (f *fdConn) pending() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed.Load() {
		return false
	}
	n, err := unix.IoctlGetInt(f.fd, unix.TIOCINQ)
	return err != nil || n > 0
}

// sizeSendBuffer makes room in the socket's send buffer for two frames of
// msize bytes, so that a response is one write(2) and no wait even at
// msize 1 MiB (a unix socket's default room is about 200 KiB, which made
// a 1 MiB Rread five writes and four waits for the client to drain). As
// root the system's cap (net.core.wmem_max) is passed by; otherwise the
// buffer grows as far as the cap allows. The memory is the kernel's and
// used only while the client has not read its responses.
func (f *fdConn) sizeSendBuffer(msize int) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed.Load() {
		return
	}
	want := 2 * msize
	if cur, err := unix.GetsockoptInt(f.fd, unix.SOL_SOCKET, unix.SO_SNDBUF); err != nil || cur >= want {
		return
	}
	if unix.SetsockoptInt(f.fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, want) != nil {
		unix.SetsockoptInt(f.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, want)
	}
}
