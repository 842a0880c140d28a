package p9srv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/union9p/union9p/p9srv/wire"
)

// conn is one client connection: a reader that decodes requests, up to
// Server.handlers requests handled at once, and responses written whole,
// one write each, as they complete.
//
// Reading and handling: the reader reads a frame and decodes it. When the
// client has sent nothing more yet (the usual case for a client waiting
// on each answer), the reader handles the request itself, saving a hand-
// off between goroutines (requests of bounded work, see quick, always); if that takes long (a copy-up, a slow disk) and
// the client has sent more meanwhile, the server's watchdog starts a new
// reader so the connection's other requests are not held up. When more frames are already buffered, the request goes
// to a handler goroutine. Every request in hand holds one of the
// connection's handler slots, and the reader waits for a free slot before
// it takes more: a client that sends without reading its answers stalls
// only itself, with memory bounded by the slots times its msize.
//
// Responses: each is built in a pooled buffer and written with one Write
// under writeMu, then its tag leaves the table of requests in flight and
// any Tflush waiting for it is answered, in that order (see flush.go).
type conn struct {
	srv *Server
	rw  io.ReadWriteCloser
	id  uint64
	log *slog.Logger
	exp Export
	st  *unionState

	br      *bufio.Reader
	msize   atomic.Uint32 // negotiated; 0 before Tversion
	pending func() bool   // whether the client sent more (see pendingFunc)

	fids fidTable

	slots chan struct{}  // one per request in hand
	work  chan *request  // to an idle handler goroutine
	idle  atomic.Int32   // handler goroutines waiting on work
	inl   atomic.Int64   // when the reader began handling a request itself (ns since watch epoch), else 0
	reads sync.WaitGroup // reader goroutines
	hands sync.WaitGroup // handler goroutines and requests in hand
	stop  atomic.Bool    // Shutdown: read no further
	gen   atomic.Uint64  // bumped by Tversion

	writeMu sync.Mutex
	broken  atomic.Bool // a write failed: the client is gone

	mu       sync.Mutex
	inflight map[uint16]*request
	drained  *sync.Cond // signalled when inflight becomes empty

	errOnce sync.Once
	err     error // why the connection was dropped, nil for an orderly end

	closeOnce sync.Once
}

func newConn(s *Server, rw io.ReadWriteCloser, x Export, st *unionState) *conn {
	if f := newFDConn(rw); f != nil {
		rw = f
	}
	c := &conn{srv: s, rw: rw, id: connCounter.Add(1), exp: x, st: st,
		br:       bufio.NewReaderSize(rw, 16<<10),
		slots:    make(chan struct{}, s.handlers),
		work:     make(chan *request),
		inflight: make(map[uint16]*request),
		pending:  pendingFunc(rw)}
	c.log = s.log.With("conn", c.id)
	c.drained = sync.NewCond(&c.mu)
	c.fids.init(s.maxFids)
	return c
}

// request is one T-message in hand.
type request struct {
	c     *conn
	tag   uint16
	typ   uint8
	frame *[]byte // the request frame (pooled); msg may alias it
	msg   wire.Request

	// out is the response being built: StartFrame for typ+1 is in it
	// when the handler runs; a handler may replace its buffer (resp).
	out  wire.Encoder
	resp *[]byte

	flushers []*request // Tflushes answered once this is answered
}

// errProtocol ends a connection whose client broke the framing.
var errProtocol = errors.New("protocol error")

// serve runs the connection until it ends and cleans up after it.
func (c *conn) serve() error {
	c.reads.Add(1)
	c.readLoop()
	c.reads.Wait()
	// Every request read is answered (or fails to be written) before the
	// fids go.
	c.hands.Wait()
	c.closeConn()
	close(c.work)
	c.fids.clunkAll(c)
	if errors.Is(c.err, io.EOF) || errors.Is(c.err, net.ErrClosed) || errors.Is(c.err, os.ErrClosed) || c.stop.Load() {
		return nil
	}
	return c.err
}

func (c *conn) fail(err error) {
	c.errOnce.Do(func() { c.err = err })
}

// readLoop reads and dispatches requests until the connection ends. It
// returns when the read side ends or when the watchdog handed reading to
// another goroutine while this one handled a request.
func (c *conn) readLoop() {
	defer c.reads.Done()
	for {
		if c.stop.Load() || c.broken.Load() {
			return
		}
		r, err := c.readRequest()
		if err != nil {
			if !c.stop.Load() {
				c.fail(err)
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrClosed) {
					c.closeConn()
				}
			}
			return
		}
		if r == nil {
			continue // answered while reading
		}
		if r.typ == wire.Tversion {
			c.version(r)
			continue
		}
		c.slots <- struct{}{}
		c.hands.Add(1)
		if c.quick(r) {
			// Bounded work: handled here even when more requests are
			// buffered, with no hand-over to another goroutine.
			c.handle(r)
			continue
		}
		if c.br.Buffered() == 0 {
			start := c.srv.watch.begin(c)
			c.handle(r)
			if !c.inl.CompareAndSwap(start, 0) {
				return // the watchdog started another reader meanwhile
			}
			continue
		}
		c.dispatch(r)
	}
}

// dispatch hands r to an idle handler goroutine or starts one.
func (c *conn) dispatch(r *request) {
	if c.idle.Load() > 0 {
		select {
		case c.work <- r:
			return
		default:
		}
	}
	go c.handlerLoop(r)
}

// handlerLoop handles r, then waits for more work; one idle handler per
// connection stays, the others end.
func (c *conn) handlerLoop(r *request) {
	for {
		c.handle(r)
		if !c.idle.CompareAndSwap(0, 1) {
			return
		}
		var ok bool
		r, ok = <-c.work
		c.idle.Store(0)
		if !ok {
			return
		}
	}
}

// handle runs one request and answers it; it frees r's slot.
func (c *conn) handle(r *request) {
	defer func() {
		<-c.slots
		c.hands.Done()
	}()
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("request handler panicked", "type", wire.MessageName(r.typ), "panic", fmt.Sprint(p))
			c.answerErr(r, errnoEIO)
		}
	}()
	if c.srv.cfg.Trace {
		c.log.Info("9p recv", "type", wire.MessageName(r.typ), "tag", r.tag)
	}
	c.startResponse(r)
	if err := c.run(r); err != nil {
		c.answerErr(r, err)
		return
	}
	c.answer(r)
}

// readRequest reads and decodes the next frame. It answers frames it can
// answer at once (undecodable bodies, Tflush of an unknown tag) and
// returns nil for them; it returns an error when the stream cannot go on.
func (c *conn) readRequest() (*request, error) {
	hdr, err := c.br.Peek(wire.HeaderSize)
	if err != nil {
		if len(hdr) > 0 && errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	size, typ, tag := wire.ParseHeader(hdr)
	limit := c.msize.Load()
	if limit == 0 {
		limit = c.srv.maxMsize // before Tversion
	}
	if size < wire.HeaderSize || size > limit {
		return nil, fmt.Errorf("%w: frame size %d out of range [%d, %d]", errProtocol, size, wire.HeaderSize, limit)
	}
	buf := c.srv.bufs.get(int(size))
	if _, err := io.ReadFull(c.br, *buf); err != nil {
		c.srv.bufs.put(buf)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	r := &request{c: c, tag: tag, typ: typ, frame: buf}
	msg, derr := wire.DecodeRequest(typ, (*buf)[wire.HeaderSize:])
	if typ == wire.Tversion {
		if derr != nil {
			c.srv.bufs.put(buf)
			return nil, fmt.Errorf("%w: bad Tversion", errProtocol)
		}
		r.msg = msg
		return r, nil
	}
	if !c.track(r) {
		c.srv.bufs.put(buf)
		return nil, fmt.Errorf("%w: tag %d reused while in flight", errProtocol, tag)
	}
	if derr != nil {
		if c.srv.cfg.Trace {
			c.log.Info("9p recv", "type", wire.MessageName(typ), "tag", tag, "err", derr.Error())
		}
		c.startResponse(r)
		if errors.Is(derr, wire.ErrUnknownType) {
			c.answerErr(r, errnoENOSYS)
		} else {
			c.answerErr(r, errnoEINVAL)
		}
		return nil, nil
	}
	r.msg = msg
	if f, ok := msg.(*wire.TflushReq); ok {
		c.flush(r, f.OldTag)
		return nil, nil
	}
	return r, nil
}

// startResponse prepares r.out for the response header.
func (c *conn) startResponse(r *request) {
	if r.resp == nil {
		r.resp = c.srv.bufs.get(0)
	}
	r.out.Reset(wire.StartFrame((*r.resp)[:0], r.typ+1, r.tag))
}

// replaceResponse gives r a response buffer with room for n bytes.
func (c *conn) replaceResponse(r *request, n int) []byte {
	c.srv.bufs.put(r.resp)
	r.resp = c.srv.bufs.get(n)
	return (*r.resp)[:0]
}

// answer sends r's response and finishes r.
func (c *conn) answer(r *request) {
	frame := wire.FinishFrame(r.out.Bytes())
	c.send(r, frame)
}

// answerErr sends an Rlerror for r and finishes r.
func (c *conn) answerErr(r *request, err error) {
	e := errnoOf(err)
	if r.resp == nil {
		r.resp = c.srv.bufs.get(0)
	}
	r.out.Reset(wire.StartFrame((*r.resp)[:0], wire.Rlerror, r.tag))
	r.out.U32(uint32(e))
	if c.srv.cfg.Trace {
		c.log.Info("9p send", "type", "Rlerror", "tag", r.tag, "errno", e.Error())
	}
	c.send(r, wire.FinishFrame(r.out.Bytes()))
}

// send writes frame as r's answer, then answers the Tflushes that wait
// for r, and releases r's buffers.
func (c *conn) send(r *request, frame []byte) {
	if c.srv.cfg.Trace && frame[4] != wire.Rlerror {
		c.log.Info("9p send", "type", wire.MessageName(frame[4]), "tag", r.tag, "size", len(frame))
	}
	// The tag leaves the table before the response is written, for the
	// client may reuse it as soon as it reads the response; a Tflush of it
	// arriving meanwhile waits for writeMu, so its Rflush still follows.
	c.writeMu.Lock()
	pending := c.finish(r)
	c.write(frame)
	for len(pending) > 0 {
		f := pending[0]
		pending = append(pending[1:], c.finish(f)...)
		var hdr [wire.HeaderSize]byte
		c.write(wire.FinishFrame(wire.StartFrame(hdr[:0], wire.Rflush, f.tag)))
		c.release(f)
	}
	c.writeMu.Unlock()
	c.release(r)
}

// write writes one frame; after a failed write nothing more is written
// and the connection is closed, which ends its reader.
func (c *conn) write(frame []byte) {
	if c.broken.Load() {
		return
	}
	if _, err := c.rw.Write(frame); err != nil {
		c.broken.Store(true)
		c.fail(err)
		c.closeConn()
	}
}

func (c *conn) release(r *request) {
	c.srv.bufs.put(r.frame)
	c.srv.bufs.put(r.resp)
	r.frame, r.resp, r.msg = nil, nil, nil
}

// closeConn closes the connection once.
func (c *conn) closeConn() {
	c.closeOnce.Do(func() { c.rw.Close() })
}

// stopReading makes the reader stop at the next frame boundary,
// interrupting a blocked read where the connection supports deadlines;
// otherwise the connection is closed once no request is in flight.
// Requests already read are still answered.
func (c *conn) stopReading() {
	c.stop.Store(true)
	if f, ok := c.rw.(*fdConn); ok {
		f.stopReading()
		return
	}
	if d, ok := c.rw.(interface{ SetReadDeadline(time.Time) error }); ok {
		if d.SetReadDeadline(time.Now()) == nil {
			return
		}
	}
	go func() {
		c.waitIdle()
		c.writeMu.Lock() // the last response may still be going out
		c.closeConn()
		c.writeMu.Unlock()
	}()
}
