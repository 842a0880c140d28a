package layertool

import (
	"io"
)

// tarOut is export's output buffer: tar headers are encoded into it and
// file data is read from the file straight into it, so that a small file
// costs one read(2) and no copy in our memory (through a tar.Writer and a
// bufio.Writer each byte was copied twice). It is written out in large
// writes, as bufio.Writer did.
//
// Entries are written whole (header, data, padding to the 512-byte block),
// so between entries the output is at a block boundary. Not safe for
// concurrent use: one exporter owns it.
type tarOut struct {
	w   io.Writer
	buf []byte // len: bytes waiting; cap: the buffer's size
	err error  // the first write error; every later call returns it
}

func newTarOut(w io.Writer, size int) *tarOut {
	return &tarOut{w: w, buf: make([]byte, 0, size)}
}

// Write appends p (io.Writer, for the sparse entries and the compressors'
// callers).
func (o *tarOut) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if o.err != nil {
			return n - len(p), o.err
		}
		if len(o.buf) == cap(o.buf) {
			o.Flush()
			continue
		}
		k := copy(o.buf[len(o.buf):cap(o.buf)], p)
		o.buf = o.buf[:len(o.buf)+k]
		p = p[k:]
	}
	return n, o.err
}

// room returns the free space of the buffer after flushing it if fewer
// than n bytes are free (n is capped at the buffer's size). Bytes placed
// there are kept by commit.
func (o *tarOut) room(n int) []byte {
	if cap(o.buf)-len(o.buf) < min(n, cap(o.buf)) {
		o.Flush()
	}
	return o.buf[len(o.buf):cap(o.buf)]
}

// commit keeps the first n bytes of the slice room returned.
func (o *tarOut) commit(n int) { o.buf = o.buf[:len(o.buf)+n] }

// zeros appends n zero bytes (padding).
func (o *tarOut) zeros(n int) {
	for n > 0 {
		r := o.room(n)
		k := min(n, len(r))
		clear(r[:k])
		o.commit(k)
		n -= k
	}
}

// Flush writes what the buffer holds.
func (o *tarOut) Flush() error {
	if len(o.buf) > 0 {
		if o.err == nil {
			_, o.err = o.w.Write(o.buf)
		}
		o.buf = o.buf[:0] // after an error, kept bytes are dropped
	}
	return o.err
}
