// Package p9wire is a small 9P2000.L client that speaks the protocol the way
// the Linux v9fs client does: plain "9P2000.L" version negotiation, Tattach
// with n_uname, one-name Twalk followed by Tgetattr, Tlcreate, Treaddir with
// the caller's byte count, and so on. It has its own encoder and decoder and
// no dependency on any server, so it can drive union9p and peers such as
// diod alike.
//
// There are two levels:
//
//   - WriteFrame and ReadFrame move raw frames (size[4] type[1] tag[2]
//     body), for tests that send hostile or malformed bytes.
//   - Client multiplexes requests over one connection: each request gets a
//     free tag, and a single reader goroutine hands each response to the
//     request that owns its tag. A Client is safe for concurrent use.
//
// An Rlerror response is returned as a unix.Errno error. Fid numbers are
// chosen by the caller, as the kernel does.
package p9wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HeaderSize is the size of a frame header: size[4] type[1] tag[2].
const HeaderSize = 7

// NoTag is the tag used by Tversion.
const NoTag uint16 = 0xFFFF

// NoFid is the "no fid" value (for Tattach's afid).
const NoFid uint32 = 0xFFFFFFFF

// NoUID is the n_uname value meaning "use the uname string".
const NoUID uint32 = 0xFFFFFFFF

// Message types of 9P2000.L (T = request, R = response = T+1).
const (
	Tlerror      uint8 = 6
	Rlerror      uint8 = 7
	Tstatfs      uint8 = 8
	Rstatfs      uint8 = 9
	Tlopen       uint8 = 12
	Rlopen       uint8 = 13
	Tlcreate     uint8 = 14
	Rlcreate     uint8 = 15
	Tsymlink     uint8 = 16
	Rsymlink     uint8 = 17
	Tmknod       uint8 = 18
	Rmknod       uint8 = 19
	Trename      uint8 = 20
	Rrename      uint8 = 21
	Treadlink    uint8 = 22
	Rreadlink    uint8 = 23
	Tgetattr     uint8 = 24
	Rgetattr     uint8 = 25
	Tsetattr     uint8 = 26
	Rsetattr     uint8 = 27
	Txattrwalk   uint8 = 30
	Rxattrwalk   uint8 = 31
	Txattrcreate uint8 = 32
	Rxattrcreate uint8 = 33
	Treaddir     uint8 = 40
	Rreaddir     uint8 = 41
	Tfsync       uint8 = 50
	Rfsync       uint8 = 51
	Tlock        uint8 = 52
	Rlock        uint8 = 53
	Tgetlock     uint8 = 54
	Rgetlock     uint8 = 55
	Tlink        uint8 = 70
	Rlink        uint8 = 71
	Tmkdir       uint8 = 72
	Rmkdir       uint8 = 73
	Trenameat    uint8 = 74
	Rrenameat    uint8 = 75
	Tunlinkat    uint8 = 76
	Runlinkat    uint8 = 77
	Tversion     uint8 = 100
	Rversion     uint8 = 101
	Tauth        uint8 = 102
	Rauth        uint8 = 103
	Tattach      uint8 = 104
	Rattach      uint8 = 105
	Tflush       uint8 = 108
	Rflush       uint8 = 109
	Twalk        uint8 = 110
	Rwalk        uint8 = 111
	Tread        uint8 = 116
	Rread        uint8 = 117
	Twrite       uint8 = 118
	Rwrite       uint8 = 119
	Tclunk       uint8 = 120
	Rclunk       uint8 = 121
	Tremove      uint8 = 122
	Rremove      uint8 = 123
)

// Frame is one message without its size field.
type Frame struct {
	Type uint8
	Tag  uint16
	Body []byte
}

// ErrFrameTooLarge is returned by ReadFrame for a frame above its limit.
var ErrFrameTooLarge = errors.New("p9wire: frame larger than the limit")

// AppendFrame appends the encoded frame to dst.
func AppendFrame(dst []byte, typ uint8, tag uint16, body []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(HeaderSize+len(body)))
	dst = append(dst, typ)
	dst = binary.LittleEndian.AppendUint16(dst, tag)
	return append(dst, body...)
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
	size := binary.LittleEndian.Uint32(hdr[:4])
	if size < HeaderSize {
		return Frame{}, fmt.Errorf("p9wire: frame size %d below header size", size)
	}
	if size > max {
		return Frame{}, fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, size, max)
	}
	f := Frame{Type: hdr[4], Tag: binary.LittleEndian.Uint16(hdr[5:7]), Body: make([]byte, size-HeaderSize)}
	if _, err := io.ReadFull(r, f.Body); err != nil {
		return Frame{}, err
	}
	return f, nil
}
