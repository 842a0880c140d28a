package wire

import (
	"encoding/binary"
	"errors"
)

// Encoder builds a message body (or, after StartFrame, a whole frame) by
// appending to a byte slice. The zero value is ready to use.
type Encoder struct{ b []byte }

// NewEncoder returns an encoder that appends to buf.
func NewEncoder(buf []byte) *Encoder { return &Encoder{b: buf} }

// Bytes returns the encoded bytes.
func (e *Encoder) Bytes() []byte { return e.b }

// Len returns the number of bytes encoded.
func (e *Encoder) Len() int { return len(e.b) }

// U8 appends a byte.
func (e *Encoder) U8(v uint8) *Encoder { e.b = append(e.b, v); return e }

// U16 appends a little-endian uint16.
func (e *Encoder) U16(v uint16) *Encoder { e.b = binary.LittleEndian.AppendUint16(e.b, v); return e }

// U32 appends a little-endian uint32.
func (e *Encoder) U32(v uint32) *Encoder { e.b = binary.LittleEndian.AppendUint32(e.b, v); return e }

// U64 appends a little-endian uint64.
func (e *Encoder) U64(v uint64) *Encoder { e.b = binary.LittleEndian.AppendUint64(e.b, v); return e }

// Str appends a string as len[2] bytes. Strings longer than 65535 bytes
// are cut (no 9P string may be longer).
func (e *Encoder) Str(s string) *Encoder {
	if len(s) > 0xFFFF {
		s = s[:0xFFFF]
	}
	e.U16(uint16(len(s)))
	e.b = append(e.b, s...)
	return e
}

// Raw appends bytes as they are.
func (e *Encoder) Raw(p []byte) *Encoder { e.b = append(e.b, p...); return e }

// QID appends a qid[13].
func (e *Encoder) QID(q QID) *Encoder { return e.U8(q.Type).U32(q.Version).U64(q.Path) }

// ErrShortBody is reported when a body ends before its fields do.
var ErrShortBody = errors.New("p9: message body too short")

// Decoder reads a message body. After the first short read every further
// read returns zero values and Err reports ErrShortBody.
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder returns a decoder over body.
func NewDecoder(body []byte) *Decoder { return &Decoder{b: body} }

// Err reports whether the body was too short for the fields read.
func (d *Decoder) Err() error { return d.err }

// Rest returns the bytes not read yet.
func (d *Decoder) Rest() []byte { return d.b }

func (d *Decoder) take(n int) []byte {
	if d.err != nil || n < 0 || len(d.b) < n {
		d.err = ErrShortBody
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

// U8 reads a byte.
func (d *Decoder) U8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

// U16 reads a uint16.
func (d *Decoder) U16() uint16 {
	if p := d.take(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

// U32 reads a uint32.
func (d *Decoder) U32() uint32 {
	if p := d.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

// U64 reads a uint64.
func (d *Decoder) U64() uint64 {
	if p := d.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

// Str reads a len[2]-prefixed string.
func (d *Decoder) Str() string { return string(d.take(int(d.U16()))) }

// Bytes reads n bytes; the slice aliases the body.
func (d *Decoder) Bytes(n int) []byte { return d.take(n) }

// QID reads a qid[13].
func (d *Decoder) QID() QID {
	return QID{Type: d.U8(), Version: d.U32(), Path: d.U64()}
}

// Reset makes e append to buf from now on.
func (e *Encoder) Reset(buf []byte) { e.b = buf }
