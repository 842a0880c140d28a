package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame is one message without its size field.
type Frame struct {
	Type uint8
	Tag  uint16
	Body []byte
}

// ErrFrameTooLarge is returned by ReadFrame for a frame above its limit.
var ErrFrameTooLarge = errors.New("p9: frame larger than the limit")

// AppendFrame appends the encoded frame to dst.
func AppendFrame(dst []byte, typ uint8, tag uint16, body []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(HeaderSize+len(body)))
	dst = append(dst, typ)
	dst = binary.LittleEndian.AppendUint16(dst, tag)
	return append(dst, body...)
}

// StartFrame appends a frame header with the size left 0; FinishFrame
// fills it in once the body is appended after it.
func StartFrame(dst []byte, typ uint8, tag uint16) []byte {
	dst = append(dst, 0, 0, 0, 0, typ)
	return binary.LittleEndian.AppendUint16(dst, tag)
}

// FinishFrame sets the size field of the frame that starts at frame[0]
// and spans all of frame.
func FinishFrame(frame []byte) []byte {
	binary.LittleEndian.PutUint32(frame, uint32(len(frame)))
	return frame
}

// ParseHeader splits a frame header.
func ParseHeader(hdr []byte) (size uint32, typ uint8, tag uint16) {
	return binary.LittleEndian.Uint32(hdr), hdr[4], binary.LittleEndian.Uint16(hdr[5:])
}

// WriteFrame writes one frame with a single Write call.
func WriteFrame(w io.Writer, typ uint8, tag uint16, body []byte) error {
	_, err := w.Write(AppendFrame(make([]byte, 0, HeaderSize+len(body)), typ, tag, body))
	return err
}

// ReadFrame reads one frame. Frames whose size field is below the header
// size or above max are refused without reading their body.
func ReadFrame(r io.Reader, max uint32) (Frame, error) {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Frame{}, err
	}
	size, typ, tag := ParseHeader(hdr[:])
	if size < HeaderSize {
		return Frame{}, fmt.Errorf("p9: frame size %d below header size", size)
	}
	if size > max {
		return Frame{}, fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, size, max)
	}
	f := Frame{Type: typ, Tag: tag, Body: make([]byte, size-HeaderSize)}
	if _, err := io.ReadFull(r, f.Body); err != nil {
		return Frame{}, err
	}
	return f, nil
}
