package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/union9p/union9p/union/tenant"
	"golang.org/x/sys/unix"
)

// ErrNotRunning is wrapped by Dial's error when nothing listens on the
// socket (it does not exist, or its server is gone).
var ErrNotRunning = errors.New("no server is running")

// Client is a connection to a control socket. It is not safe for
// concurrent use: requests and answers alternate on one connection.
type Client struct {
	conn net.Conn
	r    *bufio.Reader
}

// Dial connects to the control socket at path.
func Dial(path string) (*Client, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ECONNREFUSED):
			return nil, fmt.Errorf("control socket %s: %w there", path, ErrNotRunning)
		case errors.Is(err, os.ErrPermission):
			return nil, fmt.Errorf("control socket %s: permission denied (it is owner-only: run as the server's user or root)", path)
		}
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return &Client{conn: c, r: bufio.NewReaderSize(c, MaxLine)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Do sends one request and returns its answer; an answer that reports an
// error is returned as *Error.
func (c *Client) Do(req Request) (*Response, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	_, werr := c.conn.Write(append(data, '\n'))
	// Read even if the write failed: a server that refuses a peer answers
	// at once and closes, and its answer says why.
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		if werr != nil {
			return nil, fmt.Errorf("control: send: %w", werr)
		}
		return nil, fmt.Errorf("control: no answer: %w", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("control: bad answer: %w", err)
	}
	if !resp.OK {
		return &resp, &Error{Code: resp.Code, Message: resp.Error}
	}
	return &resp, nil
}

// List returns every tenant.
func (c *Client) List() ([]tenant.Info, error) {
	resp, err := c.Do(Request{Op: OpList})
	if err != nil {
		return nil, err
	}
	return resp.Tenants, nil
}

// Add creates a tenant.
func (c *Client) Add(name string) error { return c.simple(Request{Op: OpAdd, Name: name}) }

// Reset empties a tenant's upper after ending its connections.
func (c *Client) Reset(name string) error { return c.simple(Request{Op: OpReset, Name: name}) }

// Remove deletes a tenant after ending its connections.
func (c *Client) Remove(name string) error { return c.simple(Request{Op: OpRemove, Name: name}) }

// SetQuota sets a tenant's own quota; nil returns it to the default.
func (c *Client) SetQuota(name string, q *tenant.Quota) error {
	return c.simple(Request{Op: OpQuota, Name: name, Quota: q, Default: q == nil})
}

func (c *Client) simple(req Request) error {
	_, err := c.Do(req)
	return err
}
