package vhostuser

import "testing"

// TestGuestBuffers: adjacent guest ranges become one buffer, others stay
// apart, and a range crossing into an adjacent region is split at the
// region's end; anything outside the regions is refused.
func TestGuestBuffers(t *testing.T) {
	backing := make([]byte, 3*4096) // regions apart in this process, adjacent in the guest
	a, b := backing[:4096:4096], backing[2*4096:]
	m := &memory{regions: []region{{gpa: 0x1000, data: a}, {gpa: 0x2000, data: b}}}
	iov, err := m.guest(nil, 0x1000, 16)
	if err == nil {
		iov, err = m.guest(iov, 0x1010, 16)
	}
	if err != nil || len(iov) != 1 || len(iov[0]) != 32 || &iov[0][0] != &a[0] {
		t.Fatalf("adjacent: %d buffers, err %v", len(iov), err)
	}
	iov, _ = m.guest(iov, 0x1100, 8)
	if len(iov) != 2 {
		t.Fatalf("apart: %d buffers", len(iov))
	}
	iov, err = m.guest(nil, 0x1ff0, 32)
	if err != nil || len(iov) != 2 || len(iov[0]) != 16 || &iov[1][0] != &b[0] {
		t.Fatalf("across regions: %d buffers, err %v", len(iov), err)
	}
	for _, r := range [][2]uint64{{0, 16}, {0x2ff0, 32}, {0x3000, 1}, {^uint64(0) - 4, 16}} {
		if _, err := m.guest(nil, r[0], r[1]); err == nil {
			t.Errorf("%#x+%d: accepted", r[0], r[1])
		}
	}
}
