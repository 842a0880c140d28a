// Package p9wire is a small 9P2000.L client that speaks the protocol the way
// the Linux v9fs client does: plain "9P2000.L" version negotiation, Tattach
// with n_uname, one-name Twalk followed by Tgetattr, Tlcreate, Treaddir with
// the caller's byte count, and so on. It encodes and decodes with the
// project's one codec (p9srv/wire) but shares no server code, so it can
// drive union9p and peers such as diod alike.
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
	"io"

	"github.com/union9p/union9p/p9srv/wire"
)

// The frame layout, message types and field encodings are those of package
// wire; these names keep the client's callers independent of where the
// codec lives.

// HeaderSize is the size of a frame header: size[4] type[1] tag[2].
const HeaderSize = wire.HeaderSize

// NoTag is the tag used by Tversion.
const NoTag = wire.NoTag

// NoFid is the "no fid" value (for Tattach's afid).
const NoFid = wire.NoFid

// NoUID is the n_uname value meaning "use the uname string".
const NoUID = wire.NoUID

// Message types of 9P2000.L (T = request, R = response = T+1).
const (
	Tlerror      = wire.Tlerror
	Rlerror      = wire.Rlerror
	Tstatfs      = wire.Tstatfs
	Rstatfs      = wire.Rstatfs
	Tlopen       = wire.Tlopen
	Rlopen       = wire.Rlopen
	Tlcreate     = wire.Tlcreate
	Rlcreate     = wire.Rlcreate
	Tsymlink     = wire.Tsymlink
	Rsymlink     = wire.Rsymlink
	Tmknod       = wire.Tmknod
	Rmknod       = wire.Rmknod
	Trename      = wire.Trename
	Rrename      = wire.Rrename
	Treadlink    = wire.Treadlink
	Rreadlink    = wire.Rreadlink
	Tgetattr     = wire.Tgetattr
	Rgetattr     = wire.Rgetattr
	Tsetattr     = wire.Tsetattr
	Rsetattr     = wire.Rsetattr
	Txattrwalk   = wire.Txattrwalk
	Rxattrwalk   = wire.Rxattrwalk
	Txattrcreate = wire.Txattrcreate
	Rxattrcreate = wire.Rxattrcreate
	Treaddir     = wire.Treaddir
	Rreaddir     = wire.Rreaddir
	Tfsync       = wire.Tfsync
	Rfsync       = wire.Rfsync
	Tlock        = wire.Tlock
	Rlock        = wire.Rlock
	Tgetlock     = wire.Tgetlock
	Rgetlock     = wire.Rgetlock
	Tlink        = wire.Tlink
	Rlink        = wire.Rlink
	Tmkdir       = wire.Tmkdir
	Rmkdir       = wire.Rmkdir
	Trenameat    = wire.Trenameat
	Rrenameat    = wire.Rrenameat
	Tunlinkat    = wire.Tunlinkat
	Runlinkat    = wire.Runlinkat
	Tversion     = wire.Tversion
	Rversion     = wire.Rversion
	Tauth        = wire.Tauth
	Rauth        = wire.Rauth
	Tattach      = wire.Tattach
	Rattach      = wire.Rattach
	Tflush       = wire.Tflush
	Rflush       = wire.Rflush
	Twalk        = wire.Twalk
	Rwalk        = wire.Rwalk
	Tread        = wire.Tread
	Rread        = wire.Rread
	Twrite       = wire.Twrite
	Rwrite       = wire.Rwrite
	Tclunk       = wire.Tclunk
	Rclunk       = wire.Rclunk
	Tremove      = wire.Tremove
	Rremove      = wire.Rremove
)

// Frame is one message without its size field.
type Frame = wire.Frame

// Encoder builds a message body. The zero value is ready to use.
type Encoder = wire.Encoder

// Decoder reads a message body; see wire.Decoder.
type Decoder = wire.Decoder

// NewDecoder returns a decoder over body.
func NewDecoder(body []byte) *Decoder { return wire.NewDecoder(body) }

// ErrShortBody is reported when a response body ends before its fields do.
var ErrShortBody = wire.ErrShortBody

// ErrFrameTooLarge is returned by ReadFrame for a frame above its limit.
var ErrFrameTooLarge = wire.ErrFrameTooLarge

// AppendFrame appends the encoded frame to dst.
func AppendFrame(dst []byte, typ uint8, tag uint16, body []byte) []byte {
	return wire.AppendFrame(dst, typ, tag, body)
}

// WriteFrame writes one frame with a single Write call.
func WriteFrame(w io.Writer, typ uint8, tag uint16, body []byte) error {
	return wire.WriteFrame(w, typ, tag, body)
}

// ReadFrame reads one frame. Frames whose size field is below the header
// size or above max are refused without reading their body.
func ReadFrame(r io.Reader, max uint32) (Frame, error) { return wire.ReadFrame(r, max) }
