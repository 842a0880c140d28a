package vhostuser

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Handler answers one request of a queue. in holds the device-readable
// buffers (the request), out the device-writable ones (the reply); both
// are guest memory, valid only until Handle returns. Handle returns the
// number of bytes it wrote at the start of out. It is called
// concurrently, from several queues and several requests of one queue.
type Handler interface {
	Handle(queue int, in, out [][]byte) int
}

// LostHandler is implemented by a Handler that can answer a request
// whose worker died while handling it (keeper.go): a new worker calls
// Lost instead of Handle for each such request once, before serving
// the queue, and returns the bytes it wrote at the start of out (an
// error reply, since whether the request took effect is unknown). A
// Handler without Lost returns such requests with nothing written.
type LostHandler interface {
	Lost(queue int, in, out [][]byte) int
}

// Config describes the device.
type Config struct {
	// Queues is the number of virtqueues (vhost-user-fs: 1 hiprio + the
	// request queues).
	Queues int
	// Features are the device's virtio feature bits beyond VERSION_1,
	// INDIRECT_DESC and the vhost-user protocol bit.
	Features uint64
	// PerQueue bounds the requests of one queue handled at once.
	PerQueue int
	// Logger gets the device's problems (a broken ring, QEMU's protocol
	// errors). Nil: log.Default().
	Logger *log.Logger
}

// Device serves one vhost-user connection from QEMU.
type Device struct {
	cfg Config
	h   Handler

	// memMu guards mem: requests hold it for reading while they touch
	// guest memory; a new table (or the end) takes it for writing.
	memMu sync.RWMutex
	mem   *memory

	features      uint64 // acked by SET_FEATURES
	protoFeatures uint64
	queues        []*queue
	// inflight is the keeper's in-flight log (inflight.go), nil when
	// QEMU is connected directly. Set once, while every queue is stopped.
	inflight *inflightLog
}

// queue is one virtqueue's setup and, once started, its worker.
//
// Setup fields are written by the message goroutine only while the
// queue is stopped.
type queue struct {
	d                 *Device
	index             int
	num               uint32
	desc, avail, used uint64
	base              uint16
	kick, call        *os.File
	enabled           bool
	addrSet           bool
	running           bool
	stop              chan struct{}
	wg                sync.WaitGroup // the kick loop and its requests
	mu                sync.Mutex     // ring.push and call
	ring              vring
	broken            bool
	sem               chan struct{}
	log               *queueLog // this queue's in-flight log, or nil
}

// New returns a device that answers requests with h.
func New(cfg Config, h Handler) *Device {
	if cfg.Logger == nil {
		cfg.Logger = log.Default()
	}
	if cfg.PerQueue <= 0 {
		cfg.PerQueue = 64
	}
	d := &Device{cfg: cfg, h: h}
	for i := 0; i < cfg.Queues; i++ {
		d.queues = append(d.queues, &queue{d: d, index: i})
	}
	return d
}

func (d *Device) offered() uint64 {
	return d.cfg.Features | featVersion1 | featIndirectDesc | featProtocolFeatures
}

// Serve answers QEMU's messages on the connected unix socket conn until
// QEMU closes it or sends something the device cannot follow; then it
// stops every queue and unmaps guest memory. It does not close conn.
func (d *Device) Serve(conn int) error {
	defer d.shutdown()
	buf := make([]byte, headerSize+maxPayload)
	for {
		m, err := readMessage(conn, buf)
		if err == errClosed {
			return nil
		}
		if err != nil {
			return fmt.Errorf("vhost-user: read: %w", err)
		}
		err = d.handle(conn, m)
		m.closeFds()
		if err != nil {
			if m.flags&flagNeedReply != 0 {
				// REPLY_ACK's failure status: the keeper tells a
				// message refused from a worker that died.
				_ = replyU64(conn, m, 1)
			}
			return fmt.Errorf("vhost-user: message %d: %w", m.req, err)
		}
	}
}

// handle follows one message (the descriptors it does not take are
// closed by the caller).
func (d *Device) handle(conn int, m *message) error {
	var err error
	switch m.req {
	case msgGetFeatures:
		return replyU64(conn, m, d.offered())
	case msgSetFeatures:
		var f uint64
		if f, err = m.u64(); err != nil {
			return err
		}
		if f&^d.offered() != 0 {
			return fmt.Errorf("features %#x not offered (%#x)", f, d.offered())
		}
		d.features = f
		for _, q := range d.queues {
			q.ring.indirect = f&featIndirectDesc != 0
			if f&featProtocolFeatures == 0 {
				q.enabled = true // rings start enabled without the protocol bit
			}
		}
	case msgGetProtocolFeatures:
		return replyU64(conn, m, protoMQ)
	case msgSetProtocolFeatures:
		if d.protoFeatures, err = m.u64(); err != nil {
			return err
		}
		d.protoFeatures &= protoMQ
	case msgGetQueueNum:
		return replyU64(conn, m, uint64(d.cfg.Queues))
	case msgSetOwner:
	case msgResetOwner, msgResetDevice:
		d.stopAll()
		for _, q := range d.queues {
			q.log.invalidate()
		}
		d.features = 0
	case msgSetMemTable:
		err = d.setMemTable(m)
	case msgGetVringBase:
		// Its reply is the only one, NEED_REPLY or not.
		return d.vringMessage(conn, m)
	case msgSetVringNum, msgSetVringBase, msgSetVringAddr, msgSetVringEnable:
		err = d.vringMessage(conn, m)
	case msgSetVringKick, msgSetVringCall, msgSetVringErr:
		err = d.vringFd(m)
	case msgKeeperInflight:
		err = d.setInflight(m)
	case msgSetLogBase, msgSetLogFd:
		return errors.New("dirty logging (migration) is not supported")
	default:
		return fmt.Errorf("unsupported message")
	}
	if err == nil && m.flags&flagNeedReply != 0 {
		return replyU64(conn, m, 0)
	}
	return err
}

// setMemTable maps a new memory table, re-points running rings at it
// and unmaps the old one once no request holds it.
func (d *Device) setMemTable(m *message) error {
	mem, err := mapMemory(m.payload, m.fds)
	if err != nil {
		return err
	}
	d.memMu.Lock()
	old := d.mem
	d.mem = mem
	for _, q := range d.queues {
		if q.running {
			if err := q.ring.attach(mem, q.desc, q.avail, q.used); err != nil {
				q.broken = true
				d.cfg.Logger.Printf("vhost-user: queue %d: after a new memory table: %v", q.index, err)
			}
		}
	}
	d.memMu.Unlock()
	old.unmap()
	return nil
}

// setInflight maps the keeper's in-flight log (its descriptor is the
// message's; the mapping outlives it). Every queue must be stopped.
func (d *Device) setInflight(m *message) error {
	if d.inflight != nil {
		return errors.New("in-flight log set twice")
	}
	for _, q := range d.queues {
		if q.running {
			return fmt.Errorf("in-flight log while queue %d runs", q.index)
		}
	}
	if len(m.fds) != 1 {
		return fmt.Errorf("in-flight log with %d descriptors", len(m.fds))
	}
	l, err := mapInflight(m.fds[0], len(d.queues))
	if err != nil {
		return err
	}
	d.inflight = l
	for _, q := range d.queues {
		q.log = l.queue(q.index)
	}
	return nil
}

func (d *Device) queue(i uint32) (*queue, error) {
	if int(i) >= len(d.queues) {
		return nil, fmt.Errorf("queue %d of %d", i, len(d.queues))
	}
	return d.queues[i], nil
}

// vringMessage follows a message about one queue's state.
func (d *Device) vringMessage(conn int, m *message) error {
	i, v, err := m.state()
	if err != nil {
		return err
	}
	q, err := d.queue(i)
	if err != nil {
		return err
	}
	switch m.req {
	case msgSetVringNum:
		if err := checkQueueSize(i, v); err != nil {
			return err
		}
		q.stopRing()
		q.log.invalidate()
		q.num = v
	case msgSetVringBase:
		q.stopRing()
		q.log.invalidate()
		q.base = uint16(v)
	case msgSetVringAddr:
		a, err := m.vringAddr()
		if err != nil {
			return err
		}
		q.stopRing()
		q.log.invalidate()
		q.desc, q.used, q.avail = a.desc, a.used, a.avail
		q.addrSet = true
	case msgSetVringEnable:
		q.enabled = v == 1
		if !q.enabled {
			q.stopRing()
		}
	case msgGetVringBase:
		q.stopRing()
		q.log.invalidate()
		base := q.base
		if q.kick != nil {
			q.kick.Close()
			q.kick = nil
		}
		return reply(conn, m, stateBytes(int(i), uint32(base)))
	}
	return d.maybeStart(q)
}

// vringFd follows SET_VRING_KICK, CALL and ERR.
func (d *Device) vringFd(m *message) error {
	index, fd, err := vringFdArg(m)
	if err != nil {
		return err
	}
	q, err := d.queue(index)
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return err
	}
	var f *os.File
	if fd >= 0 {
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			return err
		}
		f = os.NewFile(uintptr(fd), fmt.Sprintf("vhost-user-%d-%d", m.req, q.index))
	}
	switch m.req {
	case msgSetVringKick:
		q.stopRing()
		if q.kick != nil {
			q.kick.Close()
		}
		q.kick = f
		return d.maybeStart(q)
	case msgSetVringCall:
		q.mu.Lock()
		old := q.call
		q.call = f
		q.mu.Unlock()
		if old != nil {
			old.Close()
		}
	case msgSetVringErr:
		if f != nil {
			f.Close() // errors are logged instead
		}
	}
	return nil
}

// maybeStart starts the queue once it is fully set up and enabled.
func (d *Device) maybeStart(q *queue) error {
	if q.running || q.kick == nil || !q.addrSet || q.num == 0 || !q.enabled {
		return nil
	}
	d.memMu.RLock()
	defer d.memMu.RUnlock()
	if d.mem == nil {
		return nil
	}
	q.ring.num = uint16(q.num)
	if err := q.ring.attach(d.mem, q.desc, q.avail, q.used); err != nil {
		return fmt.Errorf("queue %d: %w", q.index, err)
	}
	if q.log.valid() {
		// A worker before this one served the queue: resume where it
		// stopped and answer what it left unanswered.
		d.resume(q)
	} else {
		q.ring.lastAvail, q.ring.usedIdx = q.base, q.base
		q.log.reset(q.base)
	}
	q.broken = false
	q.running = true
	q.stop = make(chan struct{})
	q.sem = make(chan struct{}, d.cfg.PerQueue)
	q.wg.Add(1)
	go q.loop(q.kick, q.stop)
	return nil
}

// resume restarts q from its in-flight log (memMu read-held, the queue
// stopped): each request popped and never answered is returned now,
// through the handler's Lost if it has one.
func (d *Device) resume(q *queue) {
	lastAvail, usedIdx, lost := q.log.recover(&q.ring)
	q.ring.lastAvail, q.ring.usedIdx = lastAvail, usedIdx
	lh, _ := d.h.(LostHandler)
	for _, head := range lost {
		in, out, err := q.ring.chain(d.mem, head)
		written := 0
		if err == nil && lh != nil {
			written = lh.Lost(q.index, in, out)
		}
		q.mu.Lock()
		q.pushLogged(head, uint32(written))
		q.mu.Unlock()
	}
	if len(lost) > 0 {
		d.cfg.Logger.Printf("vhost-user: queue %d: %d requests of a previous worker answered as lost", q.index, len(lost))
		q.mu.Lock()
		q.notify()
		q.mu.Unlock()
	}
}

// stopRing stops the queue's worker and waits for its requests; the
// next avail index is kept as the base for GET_VRING_BASE or a restart.
func (q *queue) stopRing() {
	if !q.running {
		return
	}
	close(q.stop)
	// Wake the kick loop: a kick of our own (the eventfd stays QEMU's).
	var one [8]byte
	binary.LittleEndian.PutUint64(one[:], 1)
	_, _ = q.kick.Write(one[:])
	q.wg.Wait()
	q.base = q.ring.lastAvail
	q.running = false
}

func (d *Device) stopAll() {
	for _, q := range d.queues {
		q.stopRing()
		if q.kick != nil {
			q.kick.Close()
			q.kick = nil
		}
		q.mu.Lock()
		if q.call != nil {
			q.call.Close()
			q.call = nil
		}
		q.mu.Unlock()
		q.addrSet, q.num, q.base = false, 0, 0
		q.enabled = d.features&featProtocolFeatures == 0
	}
}

// shutdown stops the queues and unmaps guest memory. The in-flight log
// is left as the queues' last pushes made it: a keeper's next worker
// resumes from it.
func (d *Device) shutdown() {
	d.stopAll()
	d.memMu.Lock()
	d.mem.unmap()
	d.mem = nil
	d.memMu.Unlock()
	d.inflight.unmap()
	d.inflight = nil
	for _, q := range d.queues {
		q.log = nil
	}
}

// loop waits for kicks and pops every published chain after each.
func (q *queue) loop(kick *os.File, stop chan struct{}) {
	defer q.wg.Done()
	var b [8]byte
	for {
		select {
		case <-stop:
			return
		default:
		}
		if !q.drain(stop) {
			return
		}
		if _, err := kick.Read(b[:]); err != nil {
			q.d.cfg.Logger.Printf("vhost-user: queue %d: kick: %v", q.index, err)
			return
		}
	}
}

// drain pops and dispatches chains until the ring is empty; false if
// the ring is broken (the queue then serves nothing more).
func (q *queue) drain(stop chan struct{}) bool {
	d := q.d
	for {
		select {
		case <-stop:
			return true
		default:
		}
		d.memMu.RLock()
		if q.broken {
			d.memMu.RUnlock()
			return false
		}
		more, err := q.ring.pending()
		if err == nil && more {
			var head uint16
			if head, err = q.ring.popHead(); err == nil {
				q.log.logPop(head, q.ring.lastAvail)
				in, out, cerr := q.ring.chain(d.mem, head)
				q.sem <- struct{}{}
				q.wg.Add(1)
				go q.serve(head, in, out, cerr) // releases memMu
				continue
			}
		}
		if err != nil {
			q.broken = true
			d.cfg.Logger.Printf("vhost-user: queue %d stopped: %v", q.index, err)
		}
		d.memMu.RUnlock()
		return err == nil
	}
}

// serve handles one chain (memMu is read-held by the caller for it) and
// returns it to the driver.
func (q *queue) serve(head uint16, in, out [][]byte, cerr error) {
	d := q.d
	defer q.wg.Done()
	defer func() { <-q.sem }()
	defer d.memMu.RUnlock()
	written := 0
	if cerr != nil {
		d.cfg.Logger.Printf("vhost-user: queue %d: request %d: %v", q.index, head, cerr)
	} else {
		written = d.h.Handle(q.index, in, out)
	}
	q.mu.Lock()
	q.pushLogged(head, uint32(written))
	q.notify()
	q.mu.Unlock()
}

// pushLogged returns head to the driver, recorded in the in-flight log
// around the push (q.mu held).
func (q *queue) pushLogged(head uint16, written uint32) {
	q.log.beginPush(head)
	q.ring.push(head, written)
	q.log.endPush(head, q.ring.usedIdx)
}

// notify signals the call eventfd if the driver wants it (q.mu held).
func (q *queue) notify() {
	if q.call != nil && q.ring.wantsCall() {
		var one [8]byte
		binary.LittleEndian.PutUint64(one[:], 1)
		_, _ = q.call.Write(one[:])
	}
}
