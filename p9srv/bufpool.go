package p9srv

import (
	"math/bits"
	"sync"
)

// bufPool hands out byte buffers for frames in power-of-two size classes
// from 512 bytes up to the largest frame (DefaultMaxMsize plus a header),
// so that a request's frame and its response are not allocated anew each
// time. A connection asks for at most what its negotiated msize allows.
//
// Safe for concurrent use.
type bufPool struct {
	classes [numClasses]sync.Pool
}

const (
	minClassShift = 9 // 512 bytes
	numClasses    = 15
)

// get returns a buffer of length n (at most 1<<(minClassShift+numClasses-1)).
func (p *bufPool) get(n int) *[]byte {
	c := classOf(n)
	if c >= numClasses {
		b := make([]byte, n)
		return &b
	}
	if v := p.classes[c].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<(c+minClassShift))
	return &b
}

// put returns a buffer from get.
func (p *bufPool) put(b *[]byte) {
	if b == nil {
		return
	}
	c := classOf(cap(*b))
	if c >= numClasses || 1<<(c+minClassShift) != cap(*b) {
		return
	}
	p.classes[c].Put(b)
}

func classOf(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minClassShift
}
