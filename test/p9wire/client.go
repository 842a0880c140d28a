package p9wire

import (
	"errors"
	"fmt"
	"github.com/union9p/union9p/p9srv/wire"
	"io"
	"net"
	"sync"

	"golang.org/x/sys/unix"
)

// Version is the protocol version the Linux kernel asks for.
const Version = wire.Version

// ErrClosed is returned for requests on a client whose connection ended.
var ErrClosed = errors.New("p9wire: connection closed")

// Client sends requests over one connection and matches responses to them
// by tag. All methods are safe for concurrent use; each blocks until its
// response arrives or the connection ends.
type Client struct {
	conn  io.ReadWriteCloser
	msize uint32

	writeMu sync.Mutex // one frame per Write, frames never interleave

	mu      sync.Mutex
	pending map[uint16]chan Frame // tags in use -> waiting request
	nextTag uint16
	err     error // set once the reader stops
	done    chan struct{}
}

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
	c := &Client{conn: conn, msize: got, pending: make(map[uint16]chan Frame), done: make(chan struct{})}
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
		f, err := ReadFrame(c.conn, c.msize)
		if err != nil {
			c.fail(err)
			return
		}
		c.mu.Lock()
		ch, ok := c.pending[f.Tag]
		delete(c.pending, f.Tag)
		c.mu.Unlock()
		if ok {
			ch <- f
		}
	}
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = ErrClosed
	}
	c.err = err
	for tag, ch := range c.pending {
		close(ch)
		delete(c.pending, tag)
	}
}

// Call is a request in flight.
type Call struct {
	Tag uint16
	c   *Client
	ch  chan Frame
}

// Start sends a request and returns without waiting for its response.
func (c *Client) Start(typ uint8, body []byte) (*Call, error) {
	ch := make(chan Frame, 1)
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
	c.pending[tag] = ch
	c.mu.Unlock()

	c.writeMu.Lock()
	err := WriteFrame(c.conn, typ, tag, body)
	c.writeMu.Unlock()
	if err != nil {
		c.mu.Lock()
		delete(c.pending, tag)
		c.mu.Unlock()
		return nil, err
	}
	return &Call{Tag: tag, c: c, ch: ch}, nil
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
	call, err := c.Start(typ, body)
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
