package p9srv

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"strconv"
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

// frameAssembly is the state of the response frame being written.
type frameAssembly struct {
	hdr    [headerSize]byte
	hdrN   int
	inBody bool
	left   int      // body bytes still to come
	req    *request // request answered by this frame
	buffer bool     // the frame is collected in buf and written at its end
	buf    []byte

	// pending holds the start of a passed-through frame (its header and
	// small pieces) until a large piece or the end comes, so that a
	// response leaves in one write(v) and wakes the client once.
	pending []byte
}

// coalesceLimit is the largest piece of a frame copied into pending; larger
// ones (read data) go out with pending in one writev, uncopied.
const coalesceLimit = 64 << 10

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

// inspect records what the library will drop from a request frame and
// returns the frame to hand to the library, or an errno to answer with.
// It runs in the goroutine that will handle the frame.
func (t *tap) inspect(typ uint8, tag uint16, frame []byte) ([]byte, linux.Errno) {
	d := newDecoder(frame[headerSize:])
	if typ == msgTversion {
		msize := d.u32()
		version := d.str()
		if d.err {
			return frame, 0
		}
		if msize > t.srv.maxMsize {
			msize = t.srv.maxMsize
		}
		if len(version) >= len("9P2000.L") && version[:len("9P2000.L")] == "9P2000.L" {
			version = "9P2000.L" // no extensions (see msgFirstExtension)
		}
		e := newEncoder(typ, tag)
		e.u32(msize)
		e.str(version)
		return e.frame(), 0
	}

	r := &request{tag: tag, typ: typ, conn: t.id}
	// Every field is decoded, also those the tap does not use: a frame too
	// short for its type is answered here, with its tag. The library would
	// answer it with no tag at all, and the request would never end.
	switch typ {
	case msgTattach:
		d.u32() // fid
		d.u32() // afid
		uname := d.str()
		d.str() // aname
		nuname := d.u32()
		if d.err {
			return nil, linux.EINVAL
		}
		r.attachUID, r.parsed = resolveAttachUID(uname, nuname), true
	case msgTlcreate:
		d.u32() // fid
		d.str() // name
		d.u32() // flags
		r.mode = d.u32()
		d.u32() // gid
		r.parsed = true
	case msgTmkdir:
		d.u32() // dfid
		d.str() // name
		r.mode = d.u32()
		d.u32() // gid
		r.parsed = true
	case msgTsetattr:
		d.u32() // fid
		d.u32() // valid
		r.mode = d.u32()
		d.u32() // uid
		d.u32() // gid
		d.u64() // size
		d.u64() // atime
		d.u64()
		d.u64() // mtime
		d.u64()
		r.parsed = true
	case msgTxattrwalk:
		d.u32() // fid
		d.u32() // newfid
		d.str() // name
		r.parsed = true
	case msgTlock:
		d.u32() // fid
		d.u8()  // type
		d.u32() // flags
		d.u64() // start
		d.u64() // length
		d.u32() // proc_id
		d.str() // client_id
		r.parsed = true
	case msgTxattrcreate:
		// The library buffers the value it announces, unbounded: a
		// client could make the server allocate without limit. Linux
		// caps values at XATTR_SIZE_MAX, and so do we.
		d.u32() // fid
		d.str() // name
		size := d.u64()
		d.u32() // flags
		if !d.err && size > xattrSizeMax {
			return nil, linux.E2BIG
		}
	case msgTgetlock:
		fid := d.u32()
		q := &lockQuery{typ: d.u8(), start: d.u64(), length: d.u64(), procID: d.u32(), client: d.str()}
		if d.err {
			return nil, linux.EINVAL
		}
		r.getlock, r.parsed = q, true
		e := newEncoder(msgTlock, tag)
		e.u32(fid)
		e.u8(q.typ)
		e.u32(0) // flags: never block
		e.u64(q.start)
		e.u64(q.length)
		e.u32(q.procID)
		e.str(q.client)
		frame = e.frame()
	}
	if d.err {
		return nil, linux.EINVAL
	}
	t.srv.requests.register(r)
	t.track(tag, r)
	return frame, 0
}

// anonymousUID is whom an attach speaks for when it names no user this
// host knows: nobody, as the Linux client's own default user name
// (V9FS_DEFUSER, sent with access=any) says. Minimal guests and containers
// often have no "nobody" in their passwd file.
const anonymousUID = 65534

// resolveAttachUID returns the uid a Tattach speaks for: n_uname, as Linux
// sends it, else a numeric uname or a user name known to this host, else
// nobody.
func resolveAttachUID(uname string, nuname uint32) uint32 {
	if nuname != noUID {
		return nuname
	}
	if n, err := strconv.ParseUint(uname, 10, 32); err == nil && n != noUID {
		return uint32(n)
	}
	if u, err := user.Lookup(uname); err == nil {
		if n, err := strconv.ParseUint(u.Uid, 10, 32); err == nil {
			return uint32(n)
		}
	}
	return anonymousUID
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

// answerError writes an Rlerror for a request the library never sees.
// flushFrame reads a Tflush. One that names its own tag is answered here:
// the library would wait for that tag, its own, to finish, forever.
// Others go on to the library.
func (t *tap) flushFrame(hdr [headerSize]byte, size uint32, tag uint16) error {
	frame := make([]byte, size)
	copy(frame, hdr[:])
	if _, err := io.ReadFull(t.in, frame[headerSize:]); err != nil {
		t.noteReadError(err)
		return err
	}
	if b := frame[headerSize:]; len(b) >= 2 && binary.LittleEndian.Uint16(b) == tag {
		t.writeMu.Lock()
		_, err := t.conn.Write(newEncoder(msgRflush, tag).frame())
		t.writeMu.Unlock()
		return err
	}
	t.track(tag, nil)
	t.pending = frame
	return nil
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

// Write takes response bytes from the library; see frameAssembly.
func (t *tap) Write(p []byte) (int, error) {
	total := len(p)
	a := &t.out
	for len(p) > 0 {
		if !a.inBody {
			n := copy(a.hdr[a.hdrN:], p)
			a.hdrN += n
			p = p[n:]
			if a.hdrN < headerSize {
				continue
			}
			if err := t.startFrame(); err != nil {
				return total - len(p), err
			}
		} else {
			n := min(len(p), a.left)
			if err := t.frameBytes(p[:n]); err != nil {
				return total - len(p), err
			}
			a.left -= n
			p = p[n:]
		}
		if a.inBody && a.left == 0 {
			if err := t.endFrame(); err != nil {
				return total - len(p), err
			}
		}
	}
	return total, nil
}

func (t *tap) startFrame() error {
	a := &t.out
	a.hdrN = 0
	size := binary.LittleEndian.Uint32(a.hdr[:4])
	if size < headerSize {
		return fmt.Errorf("p9srv: library wrote a frame of size %d", size)
	}
	typ, tag := a.hdr[4], binary.LittleEndian.Uint16(a.hdr[5:])
	a.inBody, a.left = true, int(size-headerSize)
	a.req = nil
	if typ != msgRversion || tag != noTag {
		a.req = t.answered(tag)
	}
	// Error answers are small: collect them so that the errno can be
	// replaced and traced. So are the answers the tap rewrites.
	a.buffer = typ == msgRlerror || (a.req != nil && (a.req.getlock != nil || a.req.emptyXattrList))
	if a.buffer {
		a.buf = append(a.buf[:0], a.hdr[:]...)
		return nil
	}
	t.writeMu.Lock()
	a.pending = append(a.pending[:0], a.hdr[:]...)
	if t.srv.cfg.Trace {
		t.traceResponse(a.hdr[:])
	}
	return nil
}

// flushPending writes what pending holds followed by p, in one writev where
// the connection supports it.
func (t *tap) flushPending(p []byte) error {
	a := &t.out
	var err error
	switch {
	case len(p) == 0 && len(a.pending) == 0:
	case len(p) == 0:
		_, err = t.conn.Write(a.pending)
	case len(a.pending) == 0:
		_, err = t.conn.Write(p)
	default:
		bufs := net.Buffers{a.pending, p}
		_, err = bufs.WriteTo(t.conn)
	}
	a.pending = a.pending[:0]
	return err
}

func (t *tap) frameBytes(p []byte) error {
	a := &t.out
	if a.buffer {
		a.buf = append(a.buf, p...)
		return nil
	}
	last := len(p) == a.left
	if !last && len(p) <= coalesceLimit {
		a.pending = append(a.pending, p...)
		return nil
	}
	if last && len(p) <= coalesceLimit {
		a.pending = append(a.pending, p...)
		p = nil
	}
	if err := t.flushPending(p); err != nil {
		a.inBody = false
		t.writeMu.Unlock()
		return err
	}
	return nil
}

func (t *tap) endFrame() error {
	a := &t.out
	a.inBody = false
	if !a.buffer {
		err := t.flushPending(nil)
		t.writeMu.Unlock()
		return err
	}
	frame := a.buf
	if a.req != nil {
		frame = rewriteResponse(a.req, frame)
	}
	t.writeMu.Lock()
	_, err := t.conn.Write(frame)
	t.writeMu.Unlock()
	if t.srv.cfg.Trace {
		t.traceResponse(frame)
	}
	return err
}

// rewriteResponse turns the library's response to r into what the client
// asked for.
func rewriteResponse(r *request, frame []byte) []byte {
	typ := frame[4]
	switch {
	case typ == msgRlerror && r.errno != 0:
		e := newEncoder(msgRlerror, r.tag)
		e.u32(uint32(r.errno))
		return e.frame()
	case typ == msgRxattrwalk && r.emptyXattrList:
		e := newEncoder(msgRxattrwalk, r.tag)
		e.u64(0)
		return e.frame()
	case typ == msgRlock && r.getlock != nil:
		q := r.getlock
		if !q.answered {
			e := newEncoder(msgRlerror, r.tag)
			e.u32(uint32(linux.EIO))
			return e.frame()
		}
		e := newEncoder(msgRgetlock, r.tag)
		e.u8(q.result.typ)
		e.u64(q.result.start)
		e.u64(q.result.length)
		e.u32(q.result.procID)
		e.str(q.client)
		return e.frame()
	}
	return frame
}

func (t *tap) traceResponse(frame []byte) {
	typ, tag := frame[4], binary.LittleEndian.Uint16(frame[5:])
	if typ == msgRlerror && len(frame) >= headerSize+4 {
		errno := linux.Errno(binary.LittleEndian.Uint32(frame[headerSize:]))
		t.log.Info("9p send", "type", msgName(typ), "tag", tag, "errno", errno.Error())
		return
	}
	t.log.Info("9p send", "type", msgName(typ), "tag", tag, "size", binary.LittleEndian.Uint32(frame))
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

// msgName names a message type for traces.
func msgName(typ uint8) string {
	if n, ok := messageNames[typ]; ok {
		return n
	}
	return "type" + strconv.Itoa(int(typ))
}

var messageNames = map[uint8]string{
	6: "Tlerror", 7: "Rlerror", 8: "Tstatfs", 9: "Rstatfs", 12: "Tlopen", 13: "Rlopen",
	14: "Tlcreate", 15: "Rlcreate", 16: "Tsymlink", 17: "Rsymlink", 18: "Tmknod", 19: "Rmknod",
	20: "Trename", 21: "Rrename", 22: "Treadlink", 23: "Rreadlink", 24: "Tgetattr", 25: "Rgetattr",
	26: "Tsetattr", 27: "Rsetattr", 30: "Txattrwalk", 31: "Rxattrwalk", 32: "Txattrcreate",
	33: "Rxattrcreate", 40: "Treaddir", 41: "Rreaddir", 50: "Tfsync", 51: "Rfsync", 52: "Tlock",
	53: "Rlock", 54: "Tgetlock", 55: "Rgetlock", 70: "Tlink", 71: "Rlink", 72: "Tmkdir", 73: "Rmkdir",
	74: "Trenameat", 75: "Rrenameat", 76: "Tunlinkat", 77: "Runlinkat", 100: "Tversion",
	101: "Rversion", 102: "Tauth", 103: "Rauth", 104: "Tattach", 105: "Rattach", 108: "Tflush",
	109: "Rflush", 110: "Twalk", 111: "Rwalk", 116: "Tread", 117: "Rread", 118: "Twrite",
	119: "Rwrite", 120: "Tclunk", 121: "Rclunk", 122: "Tremove", 123: "Rremove",
}
