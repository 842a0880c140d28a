package vhostuser

import (
	"math/rand"
	"testing"
)

// TestRandomChains publishes chains through descriptor tables of random
// bytes (addresses partly inside the RAM, partly anywhere; random
// lengths, flags and next indexes; indirect tables of random bytes).
// Every chain must come back on the used ring, and the handler must only
// ever see slices it can read and write (a bounds error would crash the
// test process).
func TestRandomChains(t *testing.T) {
	f := newFront(t, 1)
	f.h.touchOnly.Store(true)
	rng := rand.New(rand.NewSource(1))
	randAddr := func() uint64 {
		switch rng.Intn(4) {
		case 0:
			return rng.Uint64()
		case 1:
			return testGPA + testSize - uint64(rng.Intn(64))
		default:
			return testGPA + dataOff + uint64(rng.Intn(testSize-dataOff))
		}
	}
	tbl := uint64(dataOff + 0x8000)
	for i := 0; i < 2000; i++ {
		for d := 0; d < testQSize; d++ {
			flags := uint16(rng.Intn(8))
			n := uint32(rng.Intn(1 << 13))
			if rng.Intn(8) == 0 {
				n = rng.Uint32()
			}
			addr := randAddr()
			if flags&descIndirect != 0 && rng.Intn(2) == 0 {
				addr, n = testGPA+tbl, uint32(descSize*(1+rng.Intn(8)))
			}
			f.desc(descOff, d, addr, n, flags, uint16(rng.Intn(testQSize+2)))
		}
		for d := 0; d < 8; d++ {
			f.desc(tbl, d, randAddr(), uint32(rng.Intn(1<<13)), uint16(rng.Intn(8)), uint16(rng.Intn(10)))
		}
		head := uint16(rng.Intn(testQSize))
		f.publish(0, head)
		if id, _ := f.used(0, uint16(i+1)); id != uint32(head) {
			t.Fatalf("round %d: used id %d, want %d", i, id, head)
		}
	}
	if f.h.calls.Load() == 0 {
		t.Fatal("no random chain was well-formed enough to reach the handler")
	}
	t.Logf("%d of 2000 random chains reached the handler", f.h.calls.Load())
}
