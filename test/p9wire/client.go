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
// that what a benchmark measures is the server: responses are read through
// one buffered reader (a small response is one read(2)), Twrite data goes
// out with the header in one writev(2) without being copied, and ReadInto
// reads Rread data straight into the caller's buffer.
type Client struct {
	conn  io.ReadWriteCloser
	in    *bufio.Reader // owned by readLoop
	msize uint32

	writeMu sync.Mutex // frames never interleave

	mu      sync.Mutex
	pending map[uint16]*Call // tags in use -> waiting request
	nextTag uint16
	err     error // set once the reader stops
	done    chan struct{}
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

// NewClient negotiates "9P2000.L" with the given msize over conn and starts
// the response reader. The client owns conn from then on.
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
	c := &Client{conn: conn, in: bufio.NewReaderSize(conn, readBufferSize), msize: got, pending: make(map[uint16]*Call), done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

// Msize returns the negotiated maximum message size.
func (c *Client) Msize() uint32 { return c.msize }

// Close closes the connection; pending requests fail with ErrClosed.
func (c *Client) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

func (c *Client) readLoop() {
	defer close(c.done)
	for {
		if err := c.readResponse(); err != nil {
			c.fail(err)
			return
		}
	}
}

// readResponse reads one frame and hands it to the request owning its tag.
// An Rread for a request started by ReadInto has its data read into the
// caller's buffer; every other body gets a buffer of its own.
func (c *Client) readResponse() error {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(c.in, hdr[:]); err != nil {
		return err
	}
	size, typ, tag := wire.ParseHeader(hdr[:])
	if size < HeaderSize {
		return fmt.Errorf("p9wire: frame size %d below header size", size)
	}
	if size > c.msize {
		return fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, size, c.msize)
	}
	c.mu.Lock()
	call := c.pending[tag]
	delete(c.pending, tag)
	c.mu.Unlock()
	bodyLen := int(size - HeaderSize)
	if call != nil && call.dst != nil && typ == Rread && bodyLen >= 4 {
		var cnt [4]byte
		if _, err := io.ReadFull(c.in, cnt[:]); err != nil {
			return err
		}
		n := int(binary.LittleEndian.Uint32(cnt[:]))
		if n != bodyLen-4 || n > len(call.dst) {
			return fmt.Errorf("p9wire: Rread of %d bytes in a %d-byte body for a %d-byte buffer", n, bodyLen, len(call.dst))
		}
		if _, err := io.ReadFull(c.in, call.dst[:n]); err != nil {
			return err
		}
		call.ch <- Frame{Type: typ, Tag: tag, Body: cnt[:]}
		return nil
	}
	f := Frame{Type: typ, Tag: tag, Body: make([]byte, bodyLen)}
	if _, err := io.ReadFull(c.in, f.Body); err != nil {
		return err
	}
	if call != nil {
		call.ch <- f
	}
	return nil
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = ErrClosed
	}
	c.err = err
	for tag, call := range c.pending {
		close(call.ch)
		delete(c.pending, tag)
	}
}

// Call is a request in flight.
type Call struct {
	Tag uint16
	c   *Client
	ch  chan Frame
	dst []byte // where an Rread's data goes (ReadInto), or nil
}

// Start sends a request and returns without waiting for its response.
func (c *Client) Start(typ uint8, body []byte) (*Call, error) {
	return c.start(typ, body, nil, nil)
}

// start registers a tag, then writes the frame: header, body and, if
// given, payload after the body (a Twrite's data, sent without a copy).
func (c *Client) start(typ uint8, body, payload, dst []byte) (*Call, error) {
	call := &Call{c: c, ch: make(chan Frame, 1), dst: dst}
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
		c.mu.Lock()
		delete(c.pending, tag)
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
	bufs := net.Buffers{head, payload}
	_, err := bufs.WriteTo(c.conn)
	return err
}

// Wait returns the response frame. An Rlerror is returned as unix.Errno.
func (call *Call) Wait() (Frame, error) {
	f, ok := <-call.ch
	if !ok {
		call.c.mu.Lock()
		err := call.c.err
		call.c.mu.Unlock()
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
