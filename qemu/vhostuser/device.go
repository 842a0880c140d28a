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
		d.features = 0
	case msgSetMemTable:
		err = d.setMemTable(m)
	case msgSetVringNum, msgSetVringBase, msgSetVringAddr, msgSetVringEnable, msgGetVringBase:
		err = d.vringMessage(conn, m)
	case msgSetVringKick, msgSetVringCall, msgSetVringErr:
		err = d.vringFd(m)
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
		if v == 0 || v > maxQueueSize || v&(v-1) != 0 {
			return fmt.Errorf("queue %d: size %d", i, v)
		}
		q.stopRing()
		q.num = v
	case msgSetVringBase:
		q.stopRing()
		q.base = uint16(v)
	case msgSetVringAddr:
		if len(m.payload) < 40 {
			return fmt.Errorf("vring address: %d bytes", len(m.payload))
		}
		q.stopRing()
		q.desc = binary.LittleEndian.Uint64(m.payload[8:])
		q.used = binary.LittleEndian.Uint64(m.payload[16:])
		q.avail = binary.LittleEndian.Uint64(m.payload[24:])
		q.addrSet = true
	case msgSetVringEnable:
		q.enabled = v == 1
		if !q.enabled {
			q.stopRing()
		}
	case msgGetVringBase:
		q.stopRing()
		base := q.base
		if q.kick != nil {
			q.kick.Close()
			q.kick = nil
		}
		var b [8]byte
		binary.LittleEndian.PutUint32(b[:], i)
		binary.LittleEndian.PutUint32(b[4:], uint32(base))
		return reply(conn, m, b[:])
	}
	return d.maybeStart(q)
}

// vringFd follows SET_VRING_KICK, CALL and ERR.
func (d *Device) vringFd(m *message) error {
	v, err := m.u64()
	if err != nil {
		return err
	}
	q, err := d.queue(uint32(v & kickIndexMask))
	if err != nil {
		return err
	}
	var f *os.File
	if v&kickNoFd == 0 {
		fd := m.takeFd()
		if fd < 0 {
			return fmt.Errorf("queue %d: no descriptor", q.index)
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			return err
		}
		f = os.NewFile(uintptr(fd), fmt.Sprintf("vhost-user-%d-%d", m.req, q.index))
	}
	switch m.req {
	case msgSetVringKick:
		if f == nil {
			return fmt.Errorf("queue %d: polling mode (no kick descriptor) is not supported", q.index)
		}
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
	q.ring.lastAvail, q.ring.usedIdx = q.base, q.base
	q.broken = false
	q.running = true
	q.stop = make(chan struct{})
	q.sem = make(chan struct{}, d.cfg.PerQueue)
	q.wg.Add(1)
	go q.loop(q.kick, q.stop)
	return nil
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

func (d *Device) shutdown() {
	d.stopAll()
	d.memMu.Lock()
	d.mem.unmap()
	d.mem = nil
	d.memMu.Unlock()
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
	q.ring.push(head, uint32(written))
	if q.call != nil && q.ring.wantsCall() {
		var one [8]byte
		binary.LittleEndian.PutUint64(one[:], 1)
		_, _ = q.call.Write(one[:])
	}
	q.mu.Unlock()
}
