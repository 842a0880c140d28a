package p9srv

import "encoding/binary"

// decoder reads little-endian 9P fields; after a short read every read
// returns zero and err is set.
type decoder struct {
	b   []byte
	err bool
}

func newDecoder(b []byte) *decoder { return &decoder{b: b} }

func (d *decoder) take(n int) []byte {
	if d.err || len(d.b) < n {
		d.err = true
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) str() string {
	n := 0
	if p := d.take(2); p != nil {
		n = int(binary.LittleEndian.Uint16(p))
	}
	return string(d.take(n))
}

// encoder builds one frame; frame fills in the size.
type encoder struct{ b []byte }

func newEncoder(typ uint8, tag uint16) *encoder {
	e := &encoder{b: make([]byte, headerSize, 64)}
	e.b[4] = typ
	binary.LittleEndian.PutUint16(e.b[5:], tag)
	return e
}

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *encoder) str(s string) {
	e.b = binary.LittleEndian.AppendUint16(e.b, uint16(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) frame() []byte {
	binary.LittleEndian.PutUint32(e.b, uint32(len(e.b)))
	return e.b
}
