package p9srv

import (
	"math/bits"
	"sync"
)

// bufPool hands out byte buffers for frames in power-of-two size classes
// from 512 bytes up to the largest frame (DefaultMaxMsize), so that a
// request's frame and its response are not allocated anew each time. A
// connection asks for at most what its negotiated msize allows.
//
// Small buffers come from sync.Pools. Large ones (64 KiB and up, the
// frames of bulk reads and writes) are kept in bounded free lists instead,
// which the garbage collector does not empty: a stream of 1 MiB reads
// would otherwise allocate (and zero) a buffer per request and run the
// collector every few requests. Each large class keeps at most
// largeClassBudget bytes of free buffers.
//
// Safe for concurrent use.
type bufPool struct {
	once  sync.Once
	small [largeClass]sync.Pool
	large [numClasses]chan *[]byte // for classes >= largeClass
}

const (
	minClassShift    = 9 // 512 bytes
	numClasses       = 14
	largeClass       = 7 // 64 KiB
	largeClassBudget = 16 << 20
)

func (p *bufPool) init() {
	for c := largeClass; c < numClasses; c++ {
		p.large[c] = make(chan *[]byte, max(2, largeClassBudget>>(c+minClassShift)))
	}
}

// get returns a buffer of length n.
func (p *bufPool) get(n int) *[]byte {
	p.once.Do(p.init)
	c := classOf(n)
	var b *[]byte
	switch {
	case c >= numClasses:
		buf := make([]byte, n)
		return &buf
	case c >= largeClass:
		select {
		case b = <-p.large[c]:
		default:
		}
	default:
		b, _ = p.small[c].Get().(*[]byte)
	}
	if b == nil {
		buf := make([]byte, n, 1<<(c+minClassShift))
		return &buf
	}
	*b = (*b)[:n]
	return b
}

// put returns a buffer from get.
func (p *bufPool) put(b *[]byte) {
	if b == nil {
		return
	}
	p.once.Do(p.init)
	c := classOf(cap(*b))
	if c >= numClasses || 1<<(c+minClassShift) != cap(*b) {
		return
	}
	if c >= largeClass {
		select {
		case p.large[c] <- b:
		default: // the class's budget is full: let it go
		}
		return
	}
	p.small[c].Put(b)
}

func classOf(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minClassShift
}
