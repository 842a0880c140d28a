package vhostuser

import (
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// TestInflightRecoverWindows: a worker killed between the two stores of
// a pop, or between publishing a push and logging it, leaves a log that
// recover repairs: the half-popped head is popped again (not answered
// as lost), the pushed head is not pushed twice; a head popped and
// unanswered is lost.
func TestInflightRecoverWindows(t *testing.T) {
	fd, err := newInflightFd(1)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	l, err := mapInflight(fd, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.unmap()
	if _, err := mapInflight(fd, 2); err == nil {
		t.Fatal("a log of one queue mapped as two")
	}
	ram := make([]byte, 0x3000)
	mem := &memory{regions: []region{{data: ram}}}
	r := vring{num: 8}
	if err := r.attach(mem, 0, 0x1000, 0x2000); err != nil {
		t.Fatal(err)
	}
	avail := func(slot, head uint16) {
		binary.LittleEndian.PutUint16(ram[0x1000+4+2*int(slot%8):], head)
		binary.LittleEndian.PutUint16(ram[0x1000+2:], slot+1)
	}
	check := func(what string, wantAvail, wantUsed uint16, wantLost []uint16) {
		t.Helper()
		a, u, lost := l.queue(0).recover(&r)
		if a != wantAvail || u != wantUsed || fmt.Sprint(lost) != fmt.Sprint(wantLost) {
			t.Fatalf("%s: recover (%d, %d, %v), want (%d, %d, %v)", what, a, u, lost, wantAvail, wantUsed, wantLost)
		}
	}
	q := l.queue(0)
	if q.valid() {
		t.Fatal("a new log is valid")
	}
	q.reset(5)
	r.usedIdx = 5
	binary.LittleEndian.PutUint16(ram[0x2000+2:], 5)
	avail(5, 3)
	q.store(logHeads+3, 1) // killed before lastAvail was counted
	check("half popped", 5, 5, nil)

	q.logPop(3, 6)
	check("popped", 6, 5, []uint16{3})

	q.beginPush(3)
	r.push(3, 0) // published; killed before endPush
	check("pushed, not logged", 6, 6, nil)

	avail(6, 4)
	q.logPop(4, 7)
	avail(7, 1)
	q.logPop(1, 8)
	check("two in flight", 8, 6, []uint16{1, 4})
	q.invalidate()
	if q.valid() {
		t.Fatal("invalidated log is valid")
	}
}
