package vhostuser

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The in-flight log: a memfd that the keeper (keeper.go) creates for each
// QEMU connection and hands to every worker it starts, in which a worker
// records, per queue, the next avail index it will pop and which chain
// heads it has popped but not yet returned. The memory is the keeper's:
// when a worker dies (even by SIGKILL) what it last stored is still
// there, and the next worker reads it to resume the queue where the
// dead one stopped and to answer the requests it left unanswered (the
// guest would otherwise wait for them forever: virtio-fs requests have
// no timeout). The idea is vhost-user's INFLIGHT_SHMFD; the layout is
// ours (QEMU never sees it).
//
// Layout, per queue (queueLogSize bytes, little-endian 32-bit words, all
// accessed atomically):
//
//	0: valid    1 once a worker has started the queue with this log; 0
//	            after QEMU set the ring up anew (the log then says nothing)
//	1: lastAvail the next avail index to pop (low 16 bits)
//	2: usedIdx  the used index after the last completed push
//	3: pushHead the head being pushed (meaningful while the guest's used
//	            index is one past usedIdx)
//	4...: inflight[head] for head < maxQueueSize: 1 while popped and not
//	            yet pushed
//
// Crash consistency comes from the order of stores (see logPop and
// logPush) and the repair in recover: each store is a single aligned
// word, so a worker killed between two of them leaves a state recover
// can tell apart.
const (
	logValid = iota
	logLastAvail
	logUsedIdx
	logPushHead
	logHeads
	queueLogWords = logHeads + maxQueueSize
	queueLogSize  = queueLogWords * 4
)

// inflightLog is a mapped in-flight log of n queues.
type inflightLog struct {
	mem []byte
}

// newInflightFd creates a zeroed log for n queues (every queue invalid)
// and returns its descriptor.
func newInflightFd(n int) (int, error) {
	fd, err := unix.MemfdCreate("vhost-user-inflight", unix.MFD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("in-flight log: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(n*queueLogSize)); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("in-flight log: %w", err)
	}
	return fd, nil
}

// mapInflight maps the log on fd, which must hold exactly n queues.
func mapInflight(fd, n int) (*inflightLog, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("in-flight log: %w", err)
	}
	if st.Size != int64(n*queueLogSize) {
		return nil, fmt.Errorf("in-flight log of %d bytes, want %d for %d queues", st.Size, n*queueLogSize, n)
	}
	b, err := unix.Mmap(fd, 0, n*queueLogSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("in-flight log: %w", err)
	}
	return &inflightLog{mem: b}, nil
}

func (l *inflightLog) unmap() {
	if l != nil {
		_ = unix.Munmap(l.mem)
	}
}

// queueLog is one queue's part of the log; nil means no log (a device
// without a keeper): every method is then a no-op.
type queueLog struct {
	w []byte
}

func (l *inflightLog) queue(i int) *queueLog {
	if l == nil {
		return nil
	}
	return &queueLog{w: l.mem[i*queueLogSize : (i+1)*queueLogSize]}
}

func (q *queueLog) word(i int) *uint32 { return (*uint32)(unsafe.Pointer(&q.w[4*i])) }
func (q *queueLog) load(i int) uint32  { return atomic.LoadUint32(q.word(i)) }
func (q *queueLog) store(i int, v uint32) {
	atomic.StoreUint32(q.word(i), v)
}

// valid reports whether a worker has started the queue with this log.
func (q *queueLog) valid() bool { return q != nil && q.load(logValid) == 1 }

// invalidate forgets the queue: QEMU has set its ring up anew.
func (q *queueLog) invalidate() {
	if q != nil {
		q.store(logValid, 0)
	}
}

// lastAvail is the next avail index to pop, as last logged.
func (q *queueLog) lastAvail() uint16 { return uint16(q.load(logLastAvail)) }

// reset starts the log of a queue that QEMU set up at base: nothing in
// flight.
func (q *queueLog) reset(base uint16) {
	if q == nil {
		return
	}
	q.store(logValid, 0)
	for h := 0; h < maxQueueSize; h++ {
		q.store(logHeads+h, 0)
	}
	q.store(logLastAvail, uint32(base))
	q.store(logUsedIdx, uint32(base))
	q.store(logValid, 1)
}

// logPop records that head was popped and lastAvail is now next. The
// head is marked first: a worker killed between the two stores leaves a
// head marked at the slot lastAvail still points at, which recover
// unmarks (the guest will have it popped again).
func (q *queueLog) logPop(head uint16, next uint16) {
	if q == nil {
		return
	}
	if head < maxQueueSize {
		q.store(logHeads+int(head), 1)
	}
	q.store(logLastAvail, uint32(next))
}

// beginPush records the head about to be pushed, before the used ring
// is written; endPush, after the guest's used index was published,
// unmarks it and records the new used index. A worker killed between
// the publication and endPush leaves the guest's used index one past
// the log's, which tells recover that pushHead was returned.
func (q *queueLog) beginPush(head uint16) {
	if q != nil {
		q.store(logPushHead, uint32(head))
	}
}

func (q *queueLog) endPush(head uint16, usedIdx uint16) {
	if q == nil {
		return
	}
	if head < maxQueueSize {
		q.store(logHeads+int(head), 0)
	}
	q.store(logUsedIdx, uint32(usedIdx))
}

// recover repairs the log of a dead worker against the ring as the
// guest sees it and returns the avail index to resume popping at, the
// used index to resume pushing at, and the heads popped but never
// answered (ascending). r must be attached with num set.
func (q *queueLog) recover(r *vring) (lastAvail, usedIdx uint16, lost []uint16) {
	guestUsed := uint16(atomic.LoadUint32(word(r.used)) >> 16)
	logged := uint16(q.load(logUsedIdx))
	if guestUsed != logged {
		// Killed after publishing a push and before endPush.
		q.endPush(uint16(q.load(logPushHead)), guestUsed)
	}
	lastAvail = q.lastAvail()
	if r.availIdx() != lastAvail {
		// Killed between marking a popped head and counting it: the
		// head at lastAvail is still to be popped.
		slot := 4 + 2*int(lastAvail%r.num)
		head := binary.LittleEndian.Uint16(r.avail[slot:])
		if head < maxQueueSize && q.load(logHeads+int(head)) == 1 {
			q.store(logHeads+int(head), 0)
		}
	}
	for h := 0; h < int(r.num) && h < maxQueueSize; h++ {
		if q.load(logHeads+h) == 1 {
			lost = append(lost, uint16(h))
		}
	}
	return lastAvail, guestUsed, lost
}
