package p9wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/union9p/union9p/p9srv/wire"

	"golang.org/x/sys/unix"
)

// Version is the protocol version the Linux kernel asks for.
const Version = wire.Version

// ErrClosed is returned for requests on a client whose connection ended.
var ErrClosed = errors.New("p9wire: connection closed")

// Client sends requests over one connection and matches responses to them
// by tag. All methods are safe for concurrent use; each blocks until its
// response arrives or the connection ends.
//
// Like the kernel's client it keeps its own cost per request small, so
// that what a benchmark measures is the server:
//   - On a socket it makes blocking system calls on a descriptor of its
//     own (rawSocket), outside Go's network poller.
//   - There is no reader goroutine: a caller waiting for its response
//     reads responses itself, handing others' to them, until its own
//     comes (one waiter reads at a time; when it is done it wakes another
//     waiter to read on). A client used by one goroutine thus costs a
//     request one write(2) and one read(2), with no goroutine switch.
//   - Responses are read through one buffered reader (a small response is
//     one read(2)), Twrite data goes out with the header in one writev(2)
//     without being copied, and ReadInto reads Rread data straight into
//     the caller's buffer.
//
// Responses are read only while someone waits: a request started and
// never waited for has its response read when another waiter reads past
// it (or never, which costs only socket buffer space).
type Client struct {
	conn  io.ReadWriteCloser // the socket (a rawSocket when it is one)
	raw   *rawSocket         // conn, when it is a rawSocket
	in    *bufio.Reader      // read only by the waiter that holds reading
	msize uint32

	writeMu sync.Mutex // frames never interleave

	mu      sync.Mutex
	pending map[uint16]*Call // tags in use -> request not answered yet
	nextTag uint16
	reading bool       // a waiter reads responses
	idle    *sync.Cond // signalled when reading becomes false
	err     error      // set once reading failed or the client was closed
}

// readBufferSize is the client's receive buffer: larger than any
// metadata response, so those come in with one read(2); bigger Rread and
// Rreaddir bodies are read past it straight into their destination.
const readBufferSize = 64 << 10

// Dial connects to network/address ("unix", "/path" or "tcp", "host:port")
// and negotiates the version; see NewClient.
func Dial(network, address string, msize uint32) (*Client, error) {
	conn, err := net.Dial(network, address)
	if err != nil {
		return nil, err
	}
	c, err := NewClient(conn, msize)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// NewClient negotiates "9P2000.L" with the given msize over conn. The
// client owns conn from then on (on a socket conn itself is closed at once
// and the client serves a duplicate of its descriptor; see rawSocket).
func NewClient(conn io.ReadWriteCloser, msize uint32) (*Client, error) {
	body := new(Encoder).U32(msize).Str(Version).Bytes()
	if err := WriteFrame(conn, Tversion, NoTag, body); err != nil {
		return nil, err
	}
	f, err := ReadFrame(conn, msize+HeaderSize)
	if err != nil {
		return nil, fmt.Errorf("p9wire: version: %w", err)
	}
	if f.Type != Rversion {
		return nil, fmt.Errorf("p9wire: version: got message type %d", f.Type)
	}
	d := NewDecoder(f.Body)
	got, version := d.U32(), d.Str()
	if d.Err() != nil || version != Version || got == 0 || got > msize {
		return nil, fmt.Errorf("p9wire: version: server answered %q msize %d", version, got)
	}
	c := &Client{conn: conn, msize: got, pending: make(map[uint16]*Call)}
	if raw := newRawSocket(conn); raw != nil {
		c.conn, c.raw = raw, raw
	}
	c.in = bufio.NewReaderSize(c.conn, readBufferSize)
	c.idle = sync.NewCond(&c.mu)
	return c, nil
}

// Msize returns the negotiated maximum message size.
func (c *Client) Msize() uint32 { return c.msize }

// Close closes the connection; pending requests fail with ErrClosed. It
// returns once no waiter reads any more.
func (c *Client) Close() error {
	err := c.conn.Close() // ends a blocked read
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failLocked(ErrClosed)
	for c.reading {
		c.idle.Wait()
	}
	return err
}

// failLocked ends the client with err (unless it has ended already) and
// wakes every waiter; the caller holds c.mu.
func (c *Client) failLocked(err error) {
	if c.err != nil {
		return
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = ErrClosed
	}
	c.err = err
	for tag, call := range c.pending {
		delete(c.pending, tag)
		call.wake()
	}
}

// readResponse reads one frame and returns it with the request owning its
// tag (nil for an unknown tag), which leaves the table. An Rread for a
// request started by ReadInto has its data read into that request's
// buffer; every other body gets a buffer of its own. Only the waiter that
// holds c.reading calls it.
func (c *Client) readResponse() (Frame, *Call, error) {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(c.in, hdr[:]); err != nil {
		return Frame{}, nil, err
	}
	size, typ, tag := wire.ParseHeader(hdr[:])
	if size < HeaderSize {
		return Frame{}, nil, fmt.Errorf("p9wire: frame size %d below header size", size)
	}
	if size > c.msize {
		return Frame{}, nil, fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, size, c.msize)
	}
	c.mu.Lock()
	call := c.pending[tag]
	delete(c.pending, tag)
	c.mu.Unlock()
	bodyLen := int(size - HeaderSize)
	if call != nil && call.dst != nil && typ == Rread && bodyLen >= 4 {
		cnt := make([]byte, 4)
		if _, err := io.ReadFull(c.in, cnt); err != nil {
			return Frame{}, nil, err
		}
		n := int(binary.LittleEndian.Uint32(cnt))
		if n != bodyLen-4 || n > len(call.dst) {
			return Frame{}, nil, fmt.Errorf("p9wire: Rread of %d bytes in a %d-byte body for a %d-byte buffer", n, bodyLen, len(call.dst))
		}
		if _, err := io.ReadFull(c.in, call.dst[:n]); err != nil {
			return Frame{}, nil, err
		}
		return Frame{Type: typ, Tag: tag, Body: cnt}, call, nil
	}
	f := Frame{Type: typ, Tag: tag, Body: make([]byte, bodyLen)}
	if _, err := io.ReadFull(c.in, f.Body); err != nil {
		return Frame{}, nil, err
	}
	return f, call, nil
}

// Call is a request in flight.
type Call struct {
	Tag uint16
	c   *Client
	dst []byte // where an Rread's data goes (ReadInto), or nil

	// Under c.mu:
	answered bool
	resp     Frame
	waiting  bool          // its waiter sleeps on wakeCh
	wakeCh   chan struct{} // buffered 1: the response came, the client ended, or it is this waiter's turn to read
}

// wake wakes call's waiter if it sleeps; the caller holds c.mu.
func (call *Call) wake() {
	if call.waiting {
		call.waiting = false
		call.wakeCh <- struct{}{}
	}
}

// Start sends a request and returns without waiting for its response.
func (c *Client) Start(typ uint8, body []byte) (*Call, error) {
	return c.start(typ, body, nil, nil)
}

// start registers a tag, then writes the frame: header, body and, if
// given, payload after the body (a Twrite's data, sent without a copy).
func (c *Client) start(typ uint8, body, payload, dst []byte) (*Call, error) {
	call := &Call{c: c, dst: dst}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	if len(c.pending) >= int(NoTag) {
		c.mu.Unlock()
		return nil, errors.New("p9wire: no free tag")
	}
	for {
		c.nextTag++
		if c.nextTag == NoTag {
			c.nextTag = 0
		}
		if _, used := c.pending[c.nextTag]; !used {
			break
		}
	}
	tag := c.nextTag
	call.Tag = tag
	c.pending[tag] = call
	c.mu.Unlock()

	c.writeMu.Lock()
	err := c.writeFrame(typ, tag, body, payload)
	c.writeMu.Unlock()
	if err != nil {
		// The connection is broken (a frame may be half sent): the
		// client ends, as when reading fails.
		c.mu.Lock()
		delete(c.pending, tag)
		c.failLocked(err)
		err = c.err
		c.mu.Unlock()
		return nil, err
	}
	return call, nil
}

// writeFrame writes one frame; the caller holds writeMu. With a payload
// the header and body go in one buffer and the payload beside it, one
// writev(2) on a socket.
func (c *Client) writeFrame(typ uint8, tag uint16, body, payload []byte) error {
	if len(payload) == 0 {
		return WriteFrame(c.conn, typ, tag, body)
	}
	head := wire.StartFrame(make([]byte, 0, HeaderSize+len(body)), typ, tag)
	head = append(head, body...)
	binary.LittleEndian.PutUint32(head, uint32(len(head)+len(payload)))
	if c.raw != nil {
		_, err := c.raw.writev([][]byte{head, payload})
		return err
	}
	bufs := net.Buffers{head, payload}
	_, err := bufs.WriteTo(c.conn)
	return err
}

// await returns call's response: it reads responses itself while no other
// waiter does (handing each to its request), else sleeps until its
// response comes or it is its turn to read.
func (call *Call) await() (Frame, error) {
	c := call.c
	c.mu.Lock()
	for {
		if call.answered {
			c.mu.Unlock()
			return call.resp, nil
		}
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return Frame{}, err
		}
		if c.reading {
			if call.wakeCh == nil {
				call.wakeCh = make(chan struct{}, 1)
			}
			call.waiting = true
			c.mu.Unlock()
			<-call.wakeCh
			c.mu.Lock()
			continue
		}
		c.reading = true
		c.mu.Unlock()
		f, err := call.readUntilAnswered()
		c.mu.Lock()
		c.reading = false
		c.idle.Broadcast()
		if err != nil {
			c.failLocked(err)
		} else {
			// Another waiter reads on.
			for _, other := range c.pending {
				if other.waiting {
					other.wake()
					break
				}
			}
		}
		c.mu.Unlock()
		if err != nil {
			return Frame{}, c.errOr(err)
		}
		return f, nil
	}
}

// readUntilAnswered reads responses until call's own comes, handing the
// others to their requests; the caller holds c.reading.
func (call *Call) readUntilAnswered() (Frame, error) {
	c := call.c
	for {
		f, owner, err := c.readResponse()
		if err != nil {
			return Frame{}, err
		}
		if owner == call {
			return f, nil
		}
		if owner != nil {
			c.mu.Lock()
			owner.answered, owner.resp = true, f
			owner.wake()
			c.mu.Unlock()
		}
	}
}

// errOr returns the error the client ended with (ErrClosed after Close),
// else err.
func (c *Client) errOr(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	return err
}

// Wait returns the response frame. An Rlerror is returned as unix.Errno.
func (call *Call) Wait() (Frame, error) {
	f, err := call.await()
	if err != nil {
		return Frame{}, err
	}
	if f.Type == Rlerror {
		d := NewDecoder(f.Body)
		errno := d.U32()
		if d.Err() != nil {
			return f, d.Err()
		}
		return f, unix.Errno(errno)
	}
	return f, nil
}

// RPC sends a request of type typ and waits for its response, which must be
// of type typ+1 (or Rlerror, returned as a unix.Errno).
func (c *Client) RPC(typ uint8, body []byte) (*Decoder, error) {
	return c.rpc(typ, body, nil, nil)
}

func (c *Client) rpc(typ uint8, body, payload, dst []byte) (*Decoder, error) {
	call, err := c.start(typ, body, payload, dst)
	if err != nil {
		return nil, err
	}
	f, err := call.Wait()
	if err != nil {
		return nil, err
	}
	if f.Type != typ+1 {
		return nil, fmt.Errorf("p9wire: request type %d answered with type %d", typ, f.Type)
	}
	return NewDecoder(f.Body), nil
}
