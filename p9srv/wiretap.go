package p9srv

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hugelgupf/p9/linux"
)

// The wire tap sits between one client connection and the p9 library. The
// library reads requests from it and writes responses to it; the tap sees
// every frame whole and closes the library's gaps (see the package comment):
//
//   - Tversion: caps msize at Config.MaxMsize and asks for plain
//     "9P2000.L" (the library's extension messages are refused below).
//   - Tattach, Tlcreate, Tmkdir, Tsetattr, Txattrwalk, Tlock: records the
//     fields the library drops (n_uname, unmasked mode) in a request that
//     the File method finds through requestTable.current.
//   - Tgetlock: the library has no handler. The tap rewrites it into a Tlock
//     so that the library routes it to the fid's File.Lock, which sees the
//     getlock request and answers the query; the tap turns the resulting
//     Rlock back into an Rgetlock.
//   - Rlerror after Txattrwalk: replaced by the File's real errno.
//
// Reading: the library reads under its own receive lock, one frame at a
// time, and handles each frame in the goroutine that read it. Writing: the
// library writes each response with one net.Buffers.WriteTo, which reaches
// the tap as several Write calls; the tap holds writeMu from a frame's first
// byte to its last, so responses the tap writes itself never land inside
// another frame.

// 9P2000.L message types the tap looks at.
const (
	msgRlerror      = 7
	msgTlcreate     = 14
	msgTsetattr     = 26
	msgTxattrwalk   = 30
	msgTxattrcreate = 32
	msgRxattrwalk   = 31
	msgTlock        = 52
	msgRlock        = 53
	msgTgetlock     = 54
	msgRgetlock     = 55
	msgTmkdir       = 72
	msgTversion     = 100
	msgRversion     = 101
	msgTattach      = 104
	msgTflush       = 108
	msgRflush       = 109

	// Types 124-135 are the library's "9P2000.L.Google" extensions
	// (Tflushf, Twalkgetattr, Tucreate, ...). Linux never sends them, and
	// Tucreate and friends would reach File methods without the request
	// the tap records, so the tap refuses them.
	msgFirstExtension = 124
	msgLastExtension  = 135

	headerSize = 7
	noTag      = 0xFFFF
	noUID      = 0xFFFFFFFF
)

// tapInspects lists the request types whose bodies the tap reads.
var tapInspects = map[uint8]bool{
	msgTversion: true, msgTattach: true, msgTlcreate: true, msgTmkdir: true,
	msgTsetattr: true, msgTxattrwalk: true, msgTlock: true, msgTgetlock: true,
	msgTxattrcreate: true,
}

// inspectLimit bounds the frames the tap buffers to inspect; larger frames
// of those types are passed on untouched (the library refuses them or they
// fail for want of a request).
const inspectLimit = 1<<17 + headerSize

// errServerClosing is returned to the library's reader when Shutdown began.
var errServerClosing = io.EOF

type tap struct {
	srv  *Server
	conn io.ReadWriteCloser
	id   uint64 // for logs
	log  *slog.Logger

	// Read side; used only by the goroutine holding the library's
	// receive lock.
	in          *bufio.Reader
	pending     []byte // bytes of the current frame not yet handed over
	passthrough int    // further bytes of the current frame, read straight from conn
	readErr     atomic.Pointer[error]
	stopping    atomic.Bool

	// Write side; the library writes from one goroutine at a time.
	writeMu sync.Mutex // held while one frame goes out
	out     frameAssembly

	mu       sync.Mutex
	inflight map[uint16]*request // tags read but not answered; nil value = nothing recorded
	idle     *sync.Cond          // signalled when inflight becomes empty

	closeOnce sync.Once
	closeErr  error
}

var tapCounter atomic.Uint64

func newTap(s *Server, conn io.ReadWriteCloser) *tap {
	t := &tap{
		srv:      s,
		conn:     conn,
		id:       tapCounter.Add(1),
		in:       bufio.NewReaderSize(conn, 64<<10),
		inflight: make(map[uint16]*request),
	}
	t.log = s.log.With("conn", t.id)
	t.idle = sync.NewCond(&t.mu)
	return t
}

// Read hands the library the next bytes of the request stream.
func (t *tap) Read(p []byte) (int, error) {
	for len(t.pending) == 0 && t.passthrough == 0 {
		if err := t.nextFrame(); err != nil {
			return 0, err
		}
	}
	if len(t.pending) > 0 {
		n := copy(p, t.pending)
		t.pending = t.pending[n:]
		return n, nil
	}
	if len(p) > t.passthrough {
		p = p[:t.passthrough]
	}
	n, err := t.in.Read(p)
	t.passthrough -= n
	if err != nil {
		t.noteReadError(err)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	return n, err
}

// nextFrame reads the next frame header (and the body, for inspected
// types) and prepares what Read hands over. Frames the tap answers itself
// are consumed here and the loop in Read moves on.
func (t *tap) nextFrame() error {
	if t.stopping.Load() {
		return errServerClosing
	}
	var hdr [headerSize]byte
	if _, err := io.ReadFull(t.in, hdr[:]); err != nil {
		if t.stopping.Load() {
			return errServerClosing
		}
		t.noteReadError(err)
		return err
	}
	size := binary.LittleEndian.Uint32(hdr[:4])
	typ, tag := hdr[4], binary.LittleEndian.Uint16(hdr[5:])
	if size < headerSize || size > t.srv.maxMsize+headerSize {
		// Let the library see the bad size: it closes the connection.
		t.noteReadError(fmt.Errorf("frame size %d out of range", size))
		t.pending = hdr[:]
		return nil
	}
	if t.srv.cfg.Trace {
		t.log.Info("9p recv", "type", msgName(typ), "tag", tag, "size", size)
	}
	if typ >= msgFirstExtension && typ <= msgLastExtension {
		if _, err := t.in.Discard(int(size - headerSize)); err != nil {
			t.noteReadError(err)
			return err
		}
		return t.answerError(tag, linux.ENOSYS)
	}
	if typ == msgTflush && size <= headerSize+64 {
		return t.flushFrame(hdr, size, tag)
	}
	if !tapInspects[typ] || size > inspectLimit {
		t.track(tag, nil)
		t.pending = hdr[:]
		t.passthrough = int(size - headerSize)
		return nil
	}
	frame := make([]byte, size)
	copy(frame, hdr[:])
	if _, err := io.ReadFull(t.in, frame[headerSize:]); err != nil {
		t.noteReadError(err)
		return err
	}
	frame, answer := t.inspect(typ, tag, frame)
	if answer != 0 {
		return t.answerError(tag, answer)
	}
	t.pending = frame
	return nil
}

// track notes a request in flight on this connection.
func (t *tap) track(tag uint16, r *request) {
	t.mu.Lock()
	if old := t.inflight[tag]; old != nil && old != r {
		t.srv.requests.forget(old) // a client reusing a live tag; the old one is lost
	}
	t.inflight[tag] = r
	t.mu.Unlock()
}

// answered removes tag from the requests in flight and returns its request.
func (t *tap) answered(tag uint16) *request {
	t.mu.Lock()
	r := t.inflight[tag]
	delete(t.inflight, tag)
	if len(t.inflight) == 0 {
		t.idle.Broadcast()
	}
	t.mu.Unlock()
	if r != nil {
		t.srv.requests.forget(r)
	}
	return r
}

func (t *tap) answerError(tag uint16, errno linux.Errno) error {
	e := newEncoder(msgRlerror, tag)
	e.u32(uint32(errno))
	t.writeMu.Lock()
	_, err := t.conn.Write(e.frame())
	t.writeMu.Unlock()
	if t.srv.cfg.Trace {
		t.log.Info("9p send", "type", "Rlerror", "tag", tag, "errno", errno.Error(), "by", "tap")
	}
	return err
}

func (t *tap) noteReadError(err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) || t.stopping.Load() {
		return
	}
	t.readErr.CompareAndSwap(nil, &err)
}

// err returns the first reason the connection was dropped other than an
// orderly end.
func (t *tap) err() error {
	if p := t.readErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Close closes the connection once; the library calls it for both
// directions.
func (t *tap) Close() error {
	t.closeOnce.Do(func() {
		t.closeErr = t.conn.Close()
		t.mu.Lock()
		for tag, r := range t.inflight {
			if r != nil {
				t.srv.requests.forget(r)
			}
			delete(t.inflight, tag)
		}
		t.idle.Broadcast()
		t.mu.Unlock()
	})
	return t.closeErr
}

// stopReading makes the library see the end of the request stream at the
// next frame boundary, interrupting a blocked read where the connection
// supports deadlines; otherwise the connection is closed once no request
// is in flight. Requests already read are still answered.
func (t *tap) stopReading() {
	t.stopping.Store(true)
	if d, ok := t.conn.(interface{ SetReadDeadline(time.Time) error }); ok {
		if d.SetReadDeadline(time.Now()) == nil {
			return
		}
	}
	go func() {
		t.mu.Lock()
		for len(t.inflight) > 0 {
			t.idle.Wait()
		}
		t.mu.Unlock()
		t.Close()
	}()
}
