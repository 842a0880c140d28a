package p9srv

import "testing"

func TestBufPoolClasses(t *testing.T) {
	var p bufPool
	for _, n := range []int{0, 1, 512, 513, 4096, 65536, 65537, 1 << 20, 4 << 20} {
		b := p.get(n)
		if len(*b) != n || cap(*b) < n || cap(*b)&(cap(*b)-1) != 0 {
			t.Errorf("get(%d): len %d cap %d", n, len(*b), cap(*b))
		}
		p.put(b)
	}
	// A large buffer comes back from the free list, not newly made.
	b := p.get(1 << 20)
	(*b)[0] = 42
	p.put(b)
	if again := p.get(1000 << 10); &(*again)[0] != &(*b)[0] {
		t.Error("a freed 1 MiB buffer was not reused")
	}
}
