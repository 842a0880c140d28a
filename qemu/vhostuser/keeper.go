package vhostuser

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A Keeper holds QEMU's vhost-user connection for a device whose
// requests are served by a separate worker process, so that the device
// outlives the worker: QEMU (7.2, and QEMU's vhost-user-fs to this day)
// cannot reconnect a vhost-user-fs device, so a back end that dies
// takes the guest's device with it for good. The keeper answers QEMU's
// messages, keeps what they set up (features, the memory table's
// descriptors, each queue's size, addresses, base, kick and call
// eventfds) and forwards each to the worker, which maps the guest's
// RAM and serves the rings (a Device). When the worker dies, the keeper
// starts another after a backoff and replays the kept state to it;
// QEMU sees nothing.
//
// The keeper never touches guest memory or guest data: it parses only
// QEMU's messages, and the worker's replies to them.
//
// Protocol between keeper and worker: vhost-user itself, on a unix
// stream socketpair, with every message sent with NEED_REPLY so that
// the worker acknowledges it (0) or refuses it (1, then it ends) once
// it has followed it, plus one private message, msgKeeperInflight,
// whose descriptor is the in-flight log (inflight.go). A new worker
// gets, in order: the features, the owner, the memory table, each
// queue's size, addresses, base, call eventfd and enable state, the
// in-flight log, then the kick eventfds (which start the queues). With
// the log, the worker resumes each queue where the dead worker stopped
// and answers the requests that one had taken and not answered
// (LostHandler); QEMU's ring setup messages that came after the log
// reset it, since they describe a new ring.
//
// A message from QEMU that the keeper or the worker refuses ends that
// QEMU connection (and its worker); the keeper then serves the next.
type Keeper struct {
	cfg KeeperConfig

	mu     sync.Mutex
	spare  *Worker   // started by Prestart for the next connection
	conn   *keptConn // the connection being served, if any
	closed bool
}

// KeeperConfig describes the device and how to start its workers.
type KeeperConfig struct {
	// Queues and Features are those of the workers' Devices (the keeper
	// answers QEMU's GET_FEATURES and GET_QUEUE_NUM itself).
	Queues   int
	Features uint64
	// Start starts a worker process that serves a Device (with the same
	// Queues and Features) on sock, and returns once it is ready to
	// read it. The keeper closes its own copy of sock afterwards.
	Start func(sock *os.File) (*Worker, error)
	// Backoff is the wait before restarting a worker that ended; it
	// doubles after each restart up to MaxBackoff, and is back to
	// Backoff once a worker has lived a minute. Defaults: 1 s and 30 s,
	// as for union9p qemu's servers.
	Backoff, MaxBackoff time.Duration
	// Logger gets worker restarts and refused messages. Nil:
	// log.Default().
	Logger *log.Logger
}

// Worker is a started worker process.
type Worker struct {
	Kill   func()          // ends it at once (SIGKILL)
	Exited <-chan struct{} // closed once it has exited

	sock    int // the keeper's end of the socketpair
	started time.Time
}

// NewKeeper returns a keeper; it starts no worker yet.
func NewKeeper(cfg KeeperConfig) *Keeper {
	if cfg.Logger == nil {
		cfg.Logger = log.Default()
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.MaxBackoff < cfg.Backoff {
		cfg.MaxBackoff = max(30*time.Second, cfg.Backoff)
	}
	return &Keeper{cfg: cfg}
}

// Prestart starts the worker of the next connection now, so that a
// worker that cannot start at all (a bad layer) is reported before QEMU
// is.
func (k *Keeper) Prestart() error {
	w, err := k.start()
	if err != nil {
		return err
	}
	k.mu.Lock()
	old := k.spare
	k.spare = w
	k.mu.Unlock()
	if old != nil {
		old.stop()
	}
	return nil
}

// Close stops the workers (SIGKILL) and waits for them; no worker is
// started after it. For a keeper process that is told to exit, so that
// its workers are gone when it is.
func (k *Keeper) Close() {
	k.mu.Lock()
	k.closed = true
	spare, c := k.spare, k.conn
	k.spare = nil
	k.mu.Unlock()
	if spare != nil {
		spare.stop()
	}
	if c != nil {
		c.mu.Lock()
		if c.w != nil {
			c.w.stop()
			c.w = nil
		}
		c.mu.Unlock()
	}
}

func (k *Keeper) isClosed() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.closed
}

// start starts a worker on a new socketpair.
func (k *Keeper) start() (*Worker, error) {
	if k.isClosed() {
		return nil, errors.New("the keeper is closed")
	}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	theirs := os.NewFile(uintptr(sp[1]), "vhost-user-worker")
	w, err := k.cfg.Start(theirs)
	theirs.Close()
	if err != nil {
		unix.Close(sp[0])
		return nil, err
	}
	w.sock, w.started = sp[0], time.Now()
	return w, nil
}

// stop kills the worker, waits for it and closes the socket.
func (w *Worker) stop() {
	w.Kill()
	<-w.Exited
	unix.Close(w.sock)
}

// Serve holds one QEMU connection (a connected unix stream socket,
// blocking) until QEMU closes it or sends what the device cannot
// follow; workers are started, and restarted, meanwhile. It stops the
// last worker before returning, and does not close conn (it may shut
// it down: a state refused by a new worker ends the connection).
func (k *Keeper) Serve(conn int) error {
	c, err := newKeptConn(k, conn)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.conn = c
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.conn = nil
		k.mu.Unlock()
		c.close()
	}()
	go c.supervise()
	buf := make([]byte, headerSize+maxPayload)
	for {
		m, err := readMessage(conn, buf)
		if ferr := c.fatalErr(); ferr != nil {
			if m != nil {
				m.closeFds()
			}
			return fmt.Errorf("vhost-user: %w", ferr)
		}
		if err == errClosed {
			return nil
		}
		if err != nil {
			return fmt.Errorf("vhost-user: read: %w", err)
		}
		err = c.handle(m)
		m.closeFds()
		if err != nil {
			return fmt.Errorf("vhost-user: message %d: %w", m.req, err)
		}
	}
}

// keptConn is one QEMU connection's kept state and its current worker.
type keptConn struct {
	k    *Keeper
	qemu int
	stop chan struct{} // closed when the connection ends
	done chan struct{} // closed when supervise has returned

	// mu guards everything below. It is held while a message is
	// forwarded (until the worker's reply) and while the state is
	// replayed to a new worker, so a worker sees QEMU's messages in
	// order, after the replay.
	mu         sync.Mutex
	w          *Worker // nil while no worker serves
	fatal      error   // set when a worker refused the kept state: QEMU's connection ends
	inflightFd int
	log        *inflightLog // the keeper's mapping: read only while no worker runs

	features, protoFeatures uint64
	featuresSet, protoSet   bool
	owner                   bool
	memPayload              []byte
	memFds                  []int
	queues                  []keptQueue
}

// keptQueue is what QEMU set up for one queue (fds are -1 when unset).
type keptQueue struct {
	num, base, enable          uint32
	numSet, baseSet, enableSet bool
	addr                       []byte
	kick, call                 int
}

func newKeptConn(k *Keeper, conn int) (*keptConn, error) {
	fd, err := newInflightFd(k.cfg.Queues)
	if err != nil {
		return nil, err
	}
	l, err := mapInflight(fd, k.cfg.Queues)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	c := &keptConn{k: k, qemu: conn, stop: make(chan struct{}), done: make(chan struct{}), inflightFd: fd, log: l}
	for i := 0; i < k.cfg.Queues; i++ {
		c.queues = append(c.queues, keptQueue{kick: -1, call: -1})
	}
	return c, nil
}

// close ends supervision, stops the worker and releases the state.
func (c *keptConn) close() {
	close(c.stop)
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.w != nil {
		c.w.stop()
		c.w = nil
	}
	c.resetQueues()
	closeAll(c.memFds)
	c.memFds = nil
	c.log.unmap()
	unix.Close(c.inflightFd)
}

func closeAll(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

func (c *keptConn) resetQueues() {
	for i := range c.queues {
		q := &c.queues[i]
		closeAll([]int{q.kick, q.call})
		*q = keptQueue{kick: -1, call: -1}
	}
}

// supervise runs workers for the connection until it ends: the spare
// (or a new) worker first, then, each time one ends, a new one after
// the backoff.
func (c *keptConn) supervise() {
	defer close(c.done)
	cfg := &c.k.cfg
	backoff := cfg.Backoff
	c.k.mu.Lock()
	w := c.k.spare
	c.k.spare = nil
	c.k.mu.Unlock()
	for {
		if w == nil {
			var err error
			if w, err = c.k.start(); err != nil {
				cfg.Logger.Printf("vhost-user keeper: start a worker: %v; again in %v", err, backoff)
				if !c.wait(backoff) {
					return
				}
				backoff = min(2*backoff, cfg.MaxBackoff)
				continue
			}
		}
		c.mu.Lock()
		err := c.replay(w)
		if err == nil {
			c.w = w
		}
		c.mu.Unlock()
		if errors.Is(err, errRefused) {
			// QEMU set up something no worker can follow (it came
			// while no worker ran, so nothing refused it then): as if
			// it had been refused on arrival, QEMU's connection ends.
			w.stop()
			c.mu.Lock()
			c.fatal = fmt.Errorf("the device's state was refused: %w", err)
			c.mu.Unlock()
			_ = unix.Shutdown(c.qemu, unix.SHUT_RDWR) // wakes Serve's read
			return
		}
		if err != nil {
			cfg.Logger.Printf("vhost-user keeper: hand the device to a new worker: %v", err)
			w.stop()
		} else {
			select {
			case <-c.stop:
				return // close stops the worker
			case <-w.Exited:
			}
			c.mu.Lock()
			if c.w == w {
				c.w = nil
				unix.Close(w.sock)
			}
			c.mu.Unlock()
			if time.Since(w.started) > time.Minute {
				backoff = cfg.Backoff
			}
		}
		if c.k.isClosed() {
			return
		}
		w = nil
		cfg.Logger.Printf("vhost-user keeper: the worker ended; starting another in %v", backoff)
		if !c.wait(backoff) {
			return
		}
		backoff = min(2*backoff, cfg.MaxBackoff)
	}
}

func (c *keptConn) fatalErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fatal
}

// wait waits d; false if the connection ended meanwhile.
func (c *keptConn) wait(d time.Duration) bool {
	select {
	case <-c.stop:
		return false
	case <-time.After(d):
		return true
	}
}

// errRefused is the worker's refusal of a message (REPLY_ACK status 1).
var errRefused = errors.New("refused by the worker")

// send sends one message to w and waits for its reply: the payload of
// GET_VRING_BASE's, else nil after an acknowledgement. A worker that
// does not answer (it died) is an error other than errRefused.
func (c *keptConn) send(w *Worker, req uint32, payload []byte, fds []int) ([]byte, error) {
	if err := sendMessage(w.sock, req, flagNeedReply, payload, fds); err != nil {
		return nil, err
	}
	buf := make([]byte, headerSize+maxPayload)
	r, err := readMessage(w.sock, buf)
	if err != nil {
		return nil, err
	}
	r.closeFds()
	if r.req != req || r.flags&flagReply == 0 {
		return nil, fmt.Errorf("reply %d (flags %#x) to message %d", r.req, r.flags, req)
	}
	if req == msgGetVringBase {
		return append([]byte(nil), r.payload...), nil
	}
	v, err := r.u64()
	if err != nil {
		return nil, err
	}
	if v != 0 {
		return nil, errRefused
	}
	return nil, nil
}

// forward sends m to the current worker (mu held). It reports whether
// the worker followed it: false if there is no worker or it died on the
// way (the worker is then stopped, and the caller does the worker's
// part itself: the next worker gets the state by replay). A refusal is
// an error, which ends QEMU's connection.
func (c *keptConn) forward(m *message, fds []int) ([]byte, bool, error) {
	if c.w == nil {
		return nil, false, nil
	}
	reply, err := c.send(c.w, m.req, m.payload, fds)
	if err == nil {
		return reply, true, nil
	}
	if errors.Is(err, errRefused) {
		return nil, false, err
	}
	c.k.cfg.Logger.Printf("vhost-user keeper: the worker did not answer message %d: %v", m.req, err)
	c.w.stop()
	c.w = nil
	return nil, false, nil
}

// replay hands the kept state to a new worker (mu held).
func (c *keptConn) replay(w *Worker) error {
	send := func(req uint32, payload []byte, fds ...int) error {
		_, err := c.send(w, req, payload, fds)
		if err != nil {
			return fmt.Errorf("message %d: %w", req, err)
		}
		return nil
	}
	var err error
	if c.featuresSet {
		err = errors.Join(err, send(msgSetFeatures, u64Bytes(c.features)))
	}
	if c.protoSet {
		err = errors.Join(err, send(msgSetProtocolFeatures, u64Bytes(c.protoFeatures)))
	}
	if c.owner {
		err = errors.Join(err, send(msgSetOwner, nil))
	}
	if c.memPayload != nil {
		err = errors.Join(err, send(msgSetMemTable, c.memPayload, c.memFds...))
	}
	if err != nil {
		return err
	}
	for i, q := range c.queues {
		if q.numSet {
			err = errors.Join(err, send(msgSetVringNum, stateBytes(i, q.num)))
		}
		if q.addr != nil {
			err = errors.Join(err, send(msgSetVringAddr, q.addr))
		}
		if q.baseSet {
			err = errors.Join(err, send(msgSetVringBase, stateBytes(i, q.base)))
		}
		if q.call >= 0 {
			err = errors.Join(err, send(msgSetVringCall, u64Bytes(uint64(i)), q.call))
		}
		if q.enableSet {
			err = errors.Join(err, send(msgSetVringEnable, stateBytes(i, q.enable)))
		}
		if err != nil {
			return err
		}
	}
	if err := send(msgKeeperInflight, nil, c.inflightFd); err != nil {
		return err
	}
	for i, q := range c.queues {
		if q.kick >= 0 {
			if err := send(msgSetVringKick, u64Bytes(uint64(i)), q.kick); err != nil {
				return err
			}
		}
	}
	return nil
}

// handle follows one of QEMU's messages: answer, keep, forward.
func (c *keptConn) handle(m *message) error {
	offered := c.k.cfg.Features | featVersion1 | featIndirectDesc | featProtocolFeatures
	switch m.req {
	case msgGetFeatures:
		return replyU64(c.qemu, m, offered)
	case msgGetProtocolFeatures:
		return replyU64(c.qemu, m, protoMQ)
	case msgGetQueueNum:
		return replyU64(c.qemu, m, uint64(c.k.cfg.Queues))
	case msgSetLogBase, msgSetLogFd:
		return errors.New("dirty logging (migration) is not supported")
	case msgSetVringErr:
		if _, err := m.u64(); err != nil {
			return err
		}
		return c.ack(m) // its descriptor is closed: errors are logged instead
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	switch m.req {
	case msgSetFeatures:
		var f uint64
		if f, err = m.u64(); err != nil {
			return err
		}
		if f&^offered != 0 {
			return fmt.Errorf("features %#x not offered (%#x)", f, offered)
		}
		c.features, c.featuresSet = f, true
		_, _, err = c.forward(m, nil)
	case msgSetProtocolFeatures:
		var f uint64
		if f, err = m.u64(); err != nil {
			return err
		}
		c.protoFeatures, c.protoSet = f&protoMQ, true
		_, _, err = c.forward(m, nil)
	case msgSetOwner:
		c.owner = true
		_, _, err = c.forward(m, nil)
	case msgResetOwner, msgResetDevice:
		c.resetQueues()
		c.features, c.featuresSet = 0, false
		var ok bool
		if _, ok, err = c.forward(m, nil); err == nil && !ok {
			for i := range c.queues {
				c.log.queue(i).invalidate()
			}
		}
	case msgSetMemTable:
		err = c.setMemTable(m)
	case msgSetVringNum, msgSetVringAddr, msgSetVringBase, msgSetVringEnable:
		err = c.vringState(m)
	case msgGetVringBase:
		return c.getVringBase(m)
	case msgSetVringKick, msgSetVringCall:
		err = c.vringFd(m)
	default:
		return errors.New("unsupported message")
	}
	if err != nil {
		return err
	}
	return c.ack(m)
}

// ack acknowledges m to QEMU if it asked.
func (c *keptConn) ack(m *message) error {
	if m.flags&flagNeedReply != 0 {
		return replyU64(c.qemu, m, 0)
	}
	return nil
}

// setMemTable keeps the table's descriptors (the worker maps them).
func (c *keptConn) setMemTable(m *message) error {
	if len(m.payload) < memTableHeader {
		return fmt.Errorf("memory table: %d bytes", len(m.payload))
	}
	n := int(binary.LittleEndian.Uint32(m.payload))
	if n == 0 || n > maxRegions || len(m.payload) < memTableHeader+n*memRegionSize || len(m.fds) != n {
		return fmt.Errorf("memory table: %d regions, %d bytes, %d descriptors", n, len(m.payload), len(m.fds))
	}
	closeAll(c.memFds)
	c.memPayload = append([]byte(nil), m.payload...)
	c.memFds, m.fds = m.fds, nil
	_, _, err := c.forward(m, c.memFds)
	return err
}

func (c *keptConn) queue(i uint32) (*keptQueue, error) {
	if int(i) >= len(c.queues) {
		return nil, fmt.Errorf("queue %d of %d", i, len(c.queues))
	}
	return &c.queues[i], nil
}

// vringState keeps a queue's size, addresses, base or enable state.
func (c *keptConn) vringState(m *message) error {
	i, v, err := m.state()
	if err != nil {
		return err
	}
	q, err := c.queue(i)
	if err != nil {
		return err
	}
	newRing := true
	switch m.req {
	case msgSetVringNum:
		if err := checkQueueSize(i, v); err != nil {
			return err
		}
		q.num, q.numSet = v, true
	case msgSetVringAddr:
		if _, err := m.vringAddr(); err != nil {
			return err
		}
		q.addr = append([]byte(nil), m.payload[:vringAddrSize]...)
	case msgSetVringBase:
		q.base, q.baseSet = v, true
	case msgSetVringEnable:
		q.enable, q.enableSet = v, true
		newRing = false
	}
	_, ok, err := c.forward(m, nil)
	if err == nil && !ok && newRing {
		c.log.queue(int(i)).invalidate() // the worker's part: the log no longer describes the ring
	}
	return err
}

// getVringBase stops a queue: the worker answers with the next avail
// index; with no worker, the log (or the base QEMU set) does. Requests
// a worker that died took are then not answered: QEMU is stopping the
// device (guest reset or shutdown), and the guest's driver starts over.
func (c *keptConn) getVringBase(m *message) error {
	i, _, err := m.state()
	if err != nil {
		return err
	}
	q, err := c.queue(i)
	if err != nil {
		return err
	}
	reply, ok, err := c.forward(m, nil)
	if err != nil {
		return err
	}
	if !ok {
		base := q.base
		if l := c.log.queue(int(i)); l.valid() {
			base = uint32(l.lastAvail())
			l.invalidate()
		}
		reply = stateBytes(int(i), base)
	}
	if len(reply) == 8 {
		q.base, q.baseSet = binary.LittleEndian.Uint32(reply[4:]), true
	}
	closeAll([]int{q.kick})
	q.kick = -1
	return reply8(c.qemu, m, reply)
}

func reply8(fd int, m *message, p []byte) error {
	if len(p) != 8 {
		return fmt.Errorf("worker's vring base of %d bytes", len(p))
	}
	return reply(fd, m, p)
}

// vringFd keeps a queue's kick or call eventfd.
func (c *keptConn) vringFd(m *message) error {
	index, fd, err := vringFdArg(m)
	if err != nil {
		return err
	}
	q, err := c.queue(index)
	if err != nil {
		closeAll([]int{fd})
		return err
	}
	slot := &q.call
	if m.req == msgSetVringKick {
		slot = &q.kick
	}
	closeAll([]int{*slot})
	*slot = fd
	var fds []int
	if fd >= 0 {
		fds = []int{fd}
	}
	_, _, err = c.forward(m, fds)
	return err
}
