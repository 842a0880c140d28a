package vhostuser

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Descriptor flags of a split virtqueue.
const (
	descNext     = 1
	descWrite    = 2
	descIndirect = 4

	availNoInterrupt = 1 // avail.flags: the driver wants no call

	descSize = 16
	// maxQueueSize is the largest queue accepted (QEMU allows 1024 for
	// vhost-user-fs; the virtio limit is 32768).
	maxQueueSize = 1024
	// maxIndirect bounds an indirect table's entries.
	maxIndirect = 1024
	// maxChainBytes bounds the bytes a chain may describe: a FUSE
	// request or reply is at most a few MiB (max_pages 256 plus headers).
	maxChainBytes = 64 << 20
)

// errChain is a malformed descriptor chain: that request fails.
var errChain = errors.New("malformed descriptor chain")

// vring is a split virtqueue in guest memory. Its slices point into a
// memory table; they are rebuilt (attach) when the table changes.
//
// Concurrency: pop is called by the queue's one kick goroutine; push by
// request goroutines under queue.mu. Both need the memory table held
// (Device.memMu read-locked).
type vring struct {
	num   uint16
	desc  []byte // num descriptors
	avail []byte // flags, idx, ring[num]
	used  []byte // flags, idx, ring[num] of (id, len)

	lastAvail uint16 // next avail entry to pop
	usedIdx   uint16 // next used entry to fill
	indirect  bool   // indirect descriptors negotiated
}

// attach points the ring at its parts in mem (QEMU's addresses).
func (r *vring) attach(mem *memory, desc, avail, used uint64) error {
	n := uint64(r.num)
	var err error
	if desc%16 != 0 || avail%4 != 0 || used%4 != 0 {
		return fmt.Errorf("vring addresses %#x %#x %#x not aligned", desc, avail, used)
	}
	if r.desc, err = mem.qemu(desc, n*descSize); err != nil {
		return fmt.Errorf("descriptor table at %#x: %w", desc, err)
	}
	if r.avail, err = mem.qemu(avail, 4+2*n); err != nil {
		return fmt.Errorf("avail ring at %#x: %w", avail, err)
	}
	if r.used, err = mem.qemu(used, 4+8*n); err != nil {
		return fmt.Errorf("used ring at %#x: %w", used, err)
	}
	return nil
}

// word returns the 4-byte aligned word at b[0:4] for atomic access.
func word(b []byte) *uint32 {
	return (*uint32)(unsafe.Pointer(&b[0]))
}

// availIdx reads the driver's avail index (an acquire: the entries and
// descriptors it publishes are read after it).
func (r *vring) availIdx() uint16 {
	return uint16(atomic.LoadUint32(word(r.avail)) >> 16)
}

// wantsCall reports whether the driver asked to be called (read after
// the used index was published).
func (r *vring) wantsCall() bool {
	return atomic.LoadUint32(word(r.avail))&availNoInterrupt == 0
}

// pending reports whether the driver has published entries not yet
// popped, or an error if its index is impossible.
func (r *vring) pending() (bool, error) {
	idx := r.availIdx()
	if uint16(idx-r.lastAvail) > r.num {
		return false, fmt.Errorf("avail index %d is %d entries past %d (queue size %d)", idx, uint16(idx-r.lastAvail), r.lastAvail, r.num)
	}
	return idx != r.lastAvail, nil
}

// popHead takes the next published chain's head (pending must be true).
func (r *vring) popHead() (uint16, error) {
	slot := 4 + 2*int(r.lastAvail%r.num)
	head := binary.LittleEndian.Uint16(r.avail[slot:])
	r.lastAvail++
	if head >= r.num {
		return 0, fmt.Errorf("chain head %d outside the descriptor table (size %d)", head, r.num)
	}
	return head, nil
}

// chain resolves the chain starting at head into the device-readable
// (in) and device-writable (out) buffers, as slices of guest memory.
func (r *vring) chain(mem *memory, head uint16) (in, out [][]byte, err error) {
	table, tableNum := r.desc, uint32(r.num)
	i, count, indirect := uint32(head), uint32(0), false
	var total uint64
	for {
		if count >= tableNum {
			return nil, nil, fmt.Errorf("%w: longer than its table (%d), a loop", errChain, tableNum)
		}
		count++
		d := table[i*descSize : i*descSize+descSize]
		addr := binary.LittleEndian.Uint64(d)
		n := uint64(binary.LittleEndian.Uint32(d[8:]))
		flags := binary.LittleEndian.Uint16(d[12:])
		next := uint32(binary.LittleEndian.Uint16(d[14:]))
		if flags&descIndirect != 0 {
			if !r.indirect || indirect || flags&descNext != 0 || n == 0 || n%descSize != 0 || n/descSize > maxIndirect {
				return nil, nil, fmt.Errorf("%w: bad indirect descriptor (flags %#x, %d bytes)", errChain, flags, n)
			}
			if table, err = mem.guestOne(addr, n); err != nil {
				return nil, nil, fmt.Errorf("%w: indirect table at %#x: %v", errChain, addr, err)
			}
			tableNum, i, count, indirect = uint32(n/descSize), 0, 0, true
			continue
		}
		total += n
		if total > maxChainBytes {
			return nil, nil, fmt.Errorf("%w: more than %d bytes", errChain, maxChainBytes)
		}
		if flags&descWrite != 0 {
			out, err = mem.guest(out, addr, n)
		} else if len(out) > 0 {
			return nil, nil, fmt.Errorf("%w: a readable descriptor after a writable one", errChain)
		} else {
			in, err = mem.guest(in, addr, n)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %#x+%d: %v", errChain, addr, n, err)
		}
		if flags&descNext == 0 {
			return in, out, nil
		}
		if next >= tableNum {
			return nil, nil, fmt.Errorf("%w: next %d outside its table (%d)", errChain, next, tableNum)
		}
		i = next
	}
}

// push returns the chain head to the driver with written bytes and
// publishes it (a release: the reply is visible before the index).
func (r *vring) push(head uint16, written uint32) {
	slot := 4 + 8*int(r.usedIdx%r.num)
	binary.LittleEndian.PutUint32(r.used[slot:], uint32(head))
	binary.LittleEndian.PutUint32(r.used[slot+4:], written)
	r.usedIdx++
	// used.flags (low half) is ours and stays 0: kicks wanted.
	atomic.StoreUint32(word(r.used), uint32(r.usedIdx)<<16)
}
