package vhostuser

import (
	"bytes"
	"encoding/binary"
	"io"
	"log"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests play QEMU: a memfd is the guest's RAM (mapped here too), a
// socketpair carries the messages, eventfds the kicks and calls.

const (
	testGPA   = 0x100000       // guest address of the RAM
	testUVA   = 0x7f0000000000 // "QEMU's" address of the RAM
	testSize  = 1 << 20
	testQSize = 8
	// Offsets in the RAM of each queue's ring parts (queue q at q*0x4000).
	descOff  = 0x0
	availOff = 0x1000
	usedOff  = 0x2000
	dataOff  = 0x10000
)

// echo answers a request by writing its bytes reversed; with touchOnly
// it reads every byte of in and out and writes nothing.
type echo struct {
	calls     atomic.Int64
	touchOnly atomic.Bool
}

func (e *echo) Handle(queue int, in, out [][]byte) int {
	e.calls.Add(1)
	if e.touchOnly.Load() {
		var sum byte
		for _, b := range append(append([][]byte{}, in...), out...) {
			for _, c := range b {
				sum += c
			}
		}
		_ = sum
		return 0
	}
	var req []byte
	for _, b := range in {
		req = append(req, b...)
	}
	for i, j := 0, len(req)-1; i < j; i, j = i+1, j-1 {
		req[i], req[j] = req[j], req[i]
	}
	n := 0
	for _, b := range out {
		n += copy(b, req[n:])
	}
	return n
}

type front struct {
	t      testing.TB
	conn   int
	ram    []byte
	kick   []int
	call   []int
	served chan error
	h      *echo
	next   []uint16 // next avail index per queue
}

func newFront(t *testing.T, queues int) *front {
	t.Helper()
	h := &echo{}
	d := New(Config{Queues: queues, Logger: log.New(io.Discard, "", 0)}, h)
	f := newFrontServe(t, queues, d.Serve)
	f.h = h
	return f
}

// newFrontServe sets a device up through serve (which answers the
// messages on the connection it is given) as QEMU would: memory, then
// every queue, started and enabled.
func newFrontServe(t testing.TB, queues int, serve func(conn int) error) *front {
	t.Helper()
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mfd, err := unix.MemfdCreate("guest-ram", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Ftruncate(mfd, testSize); err != nil {
		t.Fatal(err)
	}
	ram, err := unix.Mmap(mfd, 0, testSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	f := &front{t: t, conn: sp[0], ram: ram, served: make(chan error, 1), next: make([]uint16, queues)}
	go func() {
		f.served <- serve(sp[1])
		unix.Close(sp[1])
	}()
	t.Cleanup(func() {
		unix.Close(f.conn)
		select {
		case <-f.served:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after the front end closed")
		}
		unix.Munmap(ram)
		unix.Close(mfd)
	})

	feat := f.call64(msgGetFeatures)
	if feat&featVersion1 == 0 || feat&featIndirectDesc == 0 || feat&featProtocolFeatures == 0 {
		t.Fatalf("features %#x", feat)
	}
	f.send(msgSetFeatures, u64(featVersion1|featIndirectDesc|featProtocolFeatures))
	if p := f.call64(msgGetProtocolFeatures); p&protoMQ == 0 {
		t.Fatalf("protocol features %#x", p)
	}
	f.send(msgSetProtocolFeatures, u64(protoMQ))
	if n := f.call64(msgGetQueueNum); n != uint64(queues) {
		t.Fatalf("queue num %d", n)
	}
	f.send(msgSetOwner, nil)
	mt := make([]byte, memTableHeader+memRegionSize)
	binary.LittleEndian.PutUint32(mt, 1)
	binary.LittleEndian.PutUint64(mt[8:], testGPA)
	binary.LittleEndian.PutUint64(mt[16:], testSize)
	binary.LittleEndian.PutUint64(mt[24:], testUVA)
	f.sendFd(msgSetMemTable, mt, mfd)
	for q := 0; q < queues; q++ {
		base := uint64(q * 0x4000)
		f.send(msgSetVringNum, state(q, testQSize))
		addr := make([]byte, 40)
		binary.LittleEndian.PutUint32(addr, uint32(q))
		binary.LittleEndian.PutUint64(addr[8:], testUVA+base+descOff)
		binary.LittleEndian.PutUint64(addr[16:], testUVA+base+usedOff)
		binary.LittleEndian.PutUint64(addr[24:], testUVA+base+availOff)
		f.send(msgSetVringAddr, addr)
		f.send(msgSetVringBase, state(q, 0))
		k, _ := unix.Eventfd(0, unix.EFD_CLOEXEC)
		c, _ := unix.Eventfd(0, unix.EFD_CLOEXEC)
		f.kick = append(f.kick, k)
		f.call = append(f.call, c)
		f.sendFd(msgSetVringKick, u64(uint64(q)), k)
		f.sendFd(msgSetVringCall, u64(uint64(q)), c)
		f.send(msgSetVringEnable, state(q, 1))
	}
	// A message with NEED_REPLY is acknowledged: everything before it
	// has been followed.
	f.ack()
	return f
}

func u64(v uint64) []byte   { return u64Bytes(v) }
func state(i, n int) []byte { return stateBytes(i, uint32(n)) }

func (f *front) write(req, flags uint32, payload []byte, fd int) {
	var fds []int
	if fd >= 0 {
		fds = []int{fd}
	}
	if err := sendMessage(f.conn, req, flags, payload, fds); err != nil {
		f.t.Fatalf("send %d: %v", req, err)
	}
}

func (f *front) send(req uint32, payload []byte)           { f.write(req, 0, payload, -1) }
func (f *front) sendFd(req uint32, payload []byte, fd int) { f.write(req, 0, payload, fd) }

func (f *front) readReply(req uint32) []byte {
	f.t.Helper()
	var h [headerSize]byte
	if err := readFull(f.conn, h[:]); err != nil {
		f.t.Fatalf("reply to %d: %v", req, err)
	}
	if got := binary.LittleEndian.Uint32(h[:]); got != req || binary.LittleEndian.Uint32(h[4:])&flagReply == 0 {
		f.t.Fatalf("reply header %x to %d", h, req)
	}
	p := make([]byte, binary.LittleEndian.Uint32(h[8:]))
	if err := readFull(f.conn, p); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *front) call64(req uint32) uint64 {
	f.t.Helper()
	f.send(req, nil)
	return binary.LittleEndian.Uint64(f.readReply(req))
}

func (f *front) ack() {
	f.t.Helper()
	f.write(msgSetOwner, flagNeedReply, nil, -1)
	if v := binary.LittleEndian.Uint64(f.readReply(msgSetOwner)); v != 0 {
		f.t.Fatalf("ack %d", v)
	}
}

// desc writes descriptor i of queue q's table (or of a table at off).
func (f *front) desc(tableOff uint64, i int, addr uint64, n uint32, flags, next uint16) {
	d := f.ram[tableOff+uint64(i*descSize):]
	binary.LittleEndian.PutUint64(d, addr)
	binary.LittleEndian.PutUint32(d[8:], n)
	binary.LittleEndian.PutUint16(d[12:], flags)
	binary.LittleEndian.PutUint16(d[14:], next)
}

func qbase(q int) uint64 { return uint64(q * 0x4000) }

// publish puts head on queue q's avail ring and kicks.
func (f *front) publish(q int, head uint16) {
	a := f.ram[qbase(q)+availOff:]
	binary.LittleEndian.PutUint16(a[4+2*int(f.next[q]%testQSize):], head)
	f.next[q]++
	atomic.StoreUint32((*uint32)(unsafePointer(a)), uint32(f.next[q])<<16)
	unix.Write(f.kick[q], u64(1))
}

// used waits until queue q's used index reaches idx, and returns the
// used element idx-1.
func (f *front) used(q int, idx uint16) (id, n uint32) {
	f.t.Helper()
	u := f.ram[qbase(q)+usedOff:]
	deadline := time.Now().Add(5 * time.Second)
	for uint16(atomic.LoadUint32((*uint32)(unsafePointer(u)))>>16) != idx {
		if time.Now().After(deadline) {
			f.t.Fatalf("queue %d: used index %d, want %d", q, binary.LittleEndian.Uint16(u[2:]), idx)
		}
		time.Sleep(time.Millisecond)
	}
	e := u[4+8*int((idx-1)%testQSize):]
	return binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:])
}

// called reports whether queue q's call eventfd was signalled.
func (f *front) called(q int) bool {
	fds := []unix.PollFd{{Fd: int32(f.call[q]), Events: unix.POLLIN}}
	n, _ := unix.Poll(fds, 2000)
	if n == 1 {
		var b [8]byte
		unix.Read(f.call[q], b[:])
		return true
	}
	return false
}

// simple puts a two-descriptor request at descriptors i, i+1 of queue q:
// req readable, then room writable; returns the writable buffer's offset.
func (f *front) simple(q, i int, req string, room uint32) uint64 {
	in := dataOff + qbase(q) + uint64(i)*0x1000
	out := in + 0x800
	copy(f.ram[in:], req)
	f.desc(qbase(q)+descOff, i, testGPA+in, uint32(len(req)), descNext, uint16(i+1))
	f.desc(qbase(q)+descOff, i+1, testGPA+out, room, descWrite, 0)
	return out
}

func TestRequestRoundTrip(t *testing.T) {
	f := newFront(t, 2)
	out := f.simple(0, 0, "hello", 16)
	f.publish(0, 0)
	id, n := f.used(0, 1)
	if id != 0 || n != 5 || string(f.ram[out:out+5]) != "olleh" {
		t.Fatalf("used (%d, %d), reply %q", id, n, f.ram[out:out+5])
	}
	if !f.called(0) {
		t.Fatal("no call after a used buffer")
	}
	// The second queue is served too.
	out = f.simple(1, 2, "abc", 3)
	f.publish(1, 2)
	if id, n := f.used(1, 1); id != 2 || n != 3 || string(f.ram[out:out+3]) != "cba" {
		t.Fatalf("queue 1: used (%d, %d), reply %q", id, n, f.ram[out:out+3])
	}
}

func TestRequestSplitAndIndirect(t *testing.T) {
	f := newFront(t, 1)
	// An indirect table at dataOff+0x8000 of three descriptors: "ab",
	// "cd" readable, 4 bytes writable.
	tbl := uint64(dataOff + 0x8000)
	copy(f.ram[dataOff:], "ab")
	copy(f.ram[dataOff+0x100:], "cd")
	f.desc(tbl, 0, testGPA+dataOff, 2, descNext, 1)
	f.desc(tbl, 1, testGPA+dataOff+0x100, 2, descNext, 2)
	f.desc(tbl, 2, testGPA+dataOff+0x200, 4, descWrite, 0)
	f.desc(descOff, 5, testGPA+tbl, 3*descSize, descIndirect, 0)
	f.publish(0, 5)
	if id, n := f.used(0, 1); id != 5 || n != 4 || string(f.ram[dataOff+0x200:dataOff+0x204]) != "dcba" {
		t.Fatalf("used (%d, %d), reply %q", id, n, f.ram[dataOff+0x200:dataOff+0x204])
	}
}

// TestHostileChains: each malformed chain is returned with nothing
// written and without calling the handler; a good request after each is
// served.
func TestHostileChains(t *testing.T) {
	f := newFront(t, 1)
	tbl := uint64(dataOff + 0x8000)
	cases := []struct {
		name  string
		setup func()
	}{
		{"loop", func() {
			f.desc(descOff, 2, testGPA+dataOff, 4, descNext, 3)
			f.desc(descOff, 3, testGPA+dataOff, 4, descNext, 2)
		}},
		{"self loop", func() { f.desc(descOff, 2, testGPA+dataOff, 4, descNext, 2) }},
		{"next outside the table", func() { f.desc(descOff, 2, testGPA+dataOff, 4, descNext, testQSize) }},
		{"address below the RAM", func() { f.desc(descOff, 2, 0x1000, 4, 0, 0) }},
		{"address past the RAM", func() { f.desc(descOff, 2, testGPA+testSize-2, 4, 0, 0) }},
		{"address wraps", func() { f.desc(descOff, 2, ^uint64(0)-1, 4, 0, 0) }},
		{"huge length", func() { f.desc(descOff, 2, testGPA, ^uint32(0), 0, 0) }},
		{"readable after writable", func() {
			f.desc(descOff, 2, testGPA+dataOff, 4, descWrite|descNext, 3)
			f.desc(descOff, 3, testGPA+dataOff, 4, 0, 0)
		}},
		{"nested indirect", func() {
			f.desc(tbl, 0, testGPA+tbl, descSize, descIndirect, 0)
			f.desc(descOff, 2, testGPA+tbl, descSize, descIndirect, 0)
		}},
		{"indirect with next", func() {
			f.desc(tbl, 0, testGPA+dataOff, 4, 0, 0)
			f.desc(descOff, 2, testGPA+tbl, descSize, descIndirect|descNext, 3)
		}},
		{"indirect table of odd size", func() { f.desc(descOff, 2, testGPA+tbl, descSize+1, descIndirect, 0) }},
		{"indirect table outside the RAM", func() { f.desc(descOff, 2, testGPA+testSize-8, descSize, descIndirect, 0) }},
		{"indirect loop", func() {
			f.desc(tbl, 0, testGPA+dataOff, 4, descNext, 1)
			f.desc(tbl, 1, testGPA+dataOff, 4, descNext, 0)
			f.desc(descOff, 2, testGPA+tbl, 2*descSize, descIndirect, 0)
		}},
	}
	idx := uint16(0)
	for _, c := range cases {
		calls := f.h.calls.Load()
		c.setup()
		f.publish(0, 2)
		idx++
		if id, n := f.used(0, idx); id != 2 || n != 0 {
			t.Errorf("%s: used (%d, %d), want (2, 0)", c.name, id, n)
		}
		if f.h.calls.Load() != calls {
			t.Errorf("%s: the handler was called", c.name)
		}
		out := f.simple(0, 0, "ok", 2)
		f.publish(0, 0)
		idx++
		if id, n := f.used(0, idx); id != 0 || n != 2 || string(f.ram[out:out+2]) != "ko" {
			t.Fatalf("after %s: used (%d, %d)", c.name, id, n)
		}
	}
}

// TestBrokenRing: an avail index too far ahead, or a head outside the
// table, stops that queue only; the other queue and the connection go on.
func TestBrokenRing(t *testing.T) {
	for _, bad := range []string{"index jump", "head outside"} {
		t.Run(bad, func(t *testing.T) {
			f := newFront(t, 2)
			a := f.ram[qbase(0)+availOff:]
			if bad == "index jump" {
				binary.LittleEndian.PutUint16(a[2:], testQSize+1)
				unix.Write(f.kick[0], u64(1))
			} else {
				f.publish(0, 200)
			}
			out := f.simple(1, 0, "xy", 2)
			f.publish(1, 0)
			if _, n := f.used(1, 1); n != 2 || string(f.ram[out:out+2]) != "yx" {
				t.Fatalf("queue 1 after queue 0 broke: %d bytes", n)
			}
			// QEMU can still stop the broken queue.
			f.send(msgGetVringBase, state(0, 0))
			f.readReply(msgGetVringBase)
			f.ack()
		})
	}
}

// TestGetVringBase: stopping a queue returns the next avail index, and
// the queue restarts from a new base.
func TestGetVringBase(t *testing.T) {
	f := newFront(t, 1)
	for i := 0; i < 3; i++ {
		f.simple(0, 0, "a", 1)
		f.publish(0, 0)
		f.used(0, uint16(i+1))
	}
	f.send(msgGetVringBase, state(0, 0))
	p := f.readReply(msgGetVringBase)
	if i, n := binary.LittleEndian.Uint32(p), binary.LittleEndian.Uint32(p[4:]); i != 0 || n != 3 {
		t.Fatalf("vring base (%d, %d), want (0, 3)", i, n)
	}
	k, _ := unix.Eventfd(0, unix.EFD_CLOEXEC)
	f.kick[0] = k
	f.sendFd(msgSetVringKick, u64(0), k)
	f.ack()
	out := f.simple(0, 0, "zq", 2)
	f.publish(0, 0)
	if _, n := f.used(0, 4); n != 2 || !bytes.Equal(f.ram[out:out+2], []byte("qz")) {
		t.Fatalf("after restart: %d bytes", n)
	}
}

// badMessages are messages from QEMU that neither a device nor a keeper
// follows: each must end its connection, never crash the process.
func badMessages() map[string]func(f *front) {
	return map[string]func(f *front){
		"unknown request":      func(f *front) { f.send(999, nil) },
		"queue out of range":   func(f *front) { f.send(msgSetVringNum, state(7, 8)) },
		"queue size not 2^n":   func(f *front) { f.send(msgSetVringNum, state(0, 6)) },
		"short payload":        func(f *front) { f.send(msgSetVringNum, []byte{1}) },
		"features not offered": func(f *front) { f.send(msgSetFeatures, u64(1<<63)) },
		"memory table without fds": func(f *front) {
			mt := make([]byte, memTableHeader+memRegionSize)
			binary.LittleEndian.PutUint32(mt, 1)
			f.send(msgSetMemTable, mt)
		},
		"payload too large": func(f *front) {
			b := make([]byte, headerSize)
			binary.LittleEndian.PutUint32(b, msgSetOwner)
			binary.LittleEndian.PutUint32(b[8:], 1<<30)
			unix.Write(f.conn, b)
		},
		"polling mode": func(f *front) { f.send(msgSetVringKick, u64(kickNoFd)) },
	}
}

// TestBadMessages: a message the device cannot follow ends the
// connection with an error, never a crash.
func TestBadMessages(t *testing.T) {
	cases := badMessages()
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFront(t, 1)
			bad(f)
			select {
			case err := <-f.served:
				if err == nil {
					t.Fatal("Serve returned no error")
				}
				f.served <- err // for the cleanup
			case <-time.After(5 * time.Second):
				t.Fatal("Serve did not end")
			}
		})
	}
}
