package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/union9p/union9p/union/tenant"
	"golang.org/x/sys/unix"
)

// Tenants is what the control server changes; *tenant.Registry is one.
type Tenants interface {
	List() []tenant.Info
	Add(name string) error
	Reset(ctx context.Context, name string, evict func(name string)) error
	Remove(ctx context.Context, name string, evict func(name string)) error
	SetQuota(name string, q *tenant.Quota) error
}

var _ Tenants = (*tenant.Registry)(nil)

// Connections is the 9P server's side of a reset or remove.
type Connections interface {
	// CloseTenant ends every connection bound to the tenant: they stop
	// reading requests, those in flight end, and each releases its
	// tenant.Handle. It may return before they are all gone (the registry
	// waits for the Handles); it must not block on the registry.
	CloseTenant(name string)
}

// DefaultDrainTimeout is how long a reset or remove waits for a tenant's
// connections to end when Server.DrainTimeout is zero.
const DefaultDrainTimeout = 30 * time.Second

// Server answers control requests. Set its fields before Serve; its
// methods are safe for concurrent use, and each connection is served by
// its own goroutine, one request at a time.
type Server struct {
	Tenants Tenants
	// Conns closes a tenant's 9P connections; nil when there are none to
	// close (a registry without a 9P server, as in tools and tests).
	Conns Connections
	// DrainTimeout bounds the wait for a tenant's connections to end in a
	// reset or remove; zero means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Logger receives one line per changing request; nil: slog.Default().
	Logger *slog.Logger

	once      sync.Once
	ctx       context.Context // cancelled by Close: ends waits in progress
	cancel    context.CancelFunc
	mu        sync.Mutex
	listeners map[net.Listener]bool
	conns     map[net.Conn]bool
	closed    bool
	wg        sync.WaitGroup
}

func (s *Server) init() {
	s.once.Do(func() {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners, s.conns = map[net.Listener]bool{}, map[net.Conn]bool{}
		if s.Logger == nil {
			s.Logger = slog.Default()
		}
	})
}

// Serve accepts control connections on l until l fails or Close is
// called (then it returns nil). l should come from Listen.
func (s *Server) Serve(l net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.listeners[l] = true
	s.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			delete(s.listeners, l)
			s.mu.Unlock()
			if closed {
				return nil
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops the listeners, ends the connections and the waits of
// requests in progress, and returns when every connection's goroutine has
// finished.
func (s *Server) Close() error {
	s.init()
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// serveConn answers one connection's requests in order.
func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	if err := checkPeer(c); err != nil {
		writeResponse(c, Response{Code: CodeDenied, Error: err.Error()})
		return
	}
	r := bufio.NewReaderSize(c, MaxLine)
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			writeResponse(c, Response{Code: CodeBadRequest, Error: fmt.Sprintf("request longer than %d bytes", MaxLine)})
			return
		}
		if err != nil {
			return // EOF, or closed by Close
		}
		resp := s.handle(line)
		if writeResponse(c, resp) != nil {
			return
		}
	}
}

// checkPeer accepts only unix connections from the server's own uid or
// root: the socket's mode says the same, this holds even if it is changed.
func checkPeer(c net.Conn) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return errors.New("control: only unix socket connections are accepted")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return cerr
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Geteuid() {
		return fmt.Errorf("control: uid %d may not use this server's control socket", cred.Uid)
	}
	return nil
}

func writeResponse(c net.Conn, resp Response) error {
	data, err := json.Marshal(resp)
	if err != nil {
		data, _ = json.Marshal(Response{Code: CodeFailed, Error: err.Error()})
	}
	_, err = c.Write(append(data, '\n'))
	return err
}

// handle answers one request line.
func (s *Server) handle(line []byte) Response {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Response{Code: CodeBadRequest, Error: fmt.Sprintf("bad request: %v", err)}
	}
	if dec.More() {
		return Response{Code: CodeBadRequest, Error: "bad request: one JSON object per line"}
	}
	needName := req.Op != OpList
	if needName && req.Name == "" {
		return Response{Code: CodeBadRequest, Error: fmt.Sprintf("bad request: %q needs a tenant name", req.Op)}
	}
	if !needName && req.Name != "" || (req.Quota != nil || req.Default) && req.Op != OpQuota {
		return Response{Code: CodeBadRequest, Error: fmt.Sprintf("bad request: fields that %q does not take", req.Op)}
	}
	if req.Op == OpQuota && (req.Quota == nil) == !req.Default {
		return Response{Code: CodeBadRequest, Error: `bad request: "quota" takes either a quota or "default":true`}
	}
	var err error
	switch req.Op {
	case OpList:
		list := s.Tenants.List()
		if list == nil {
			list = []tenant.Info{}
		}
		return Response{OK: true, Tenants: list}
	case OpAdd:
		err = s.Tenants.Add(req.Name)
	case OpReset:
		err = s.drained(func(ctx context.Context) error { return s.Tenants.Reset(ctx, req.Name, s.evict) })
	case OpRemove:
		err = s.drained(func(ctx context.Context) error { return s.Tenants.Remove(ctx, req.Name, s.evict) })
	case OpQuota:
		err = s.Tenants.SetQuota(req.Name, req.Quota)
	default:
		return Response{Code: CodeBadRequest, Error: fmt.Sprintf("bad request: unknown op %q (want list, add, reset, remove or quota)", req.Op)}
	}
	if err != nil {
		s.Logger.Warn("control request failed", "op", req.Op, "tenant", req.Name, "err", err)
		return Response{Code: codeOf(err), Error: err.Error()}
	}
	if req.Op == OpQuota && req.Quota != nil {
		s.Logger.Info("control request done", "op", req.Op, "tenant", req.Name, "bytes", req.Quota.Bytes, "inodes", req.Quota.Inodes)
	} else {
		s.Logger.Info("control request done", "op", req.Op, "tenant", req.Name)
	}
	return Response{OK: true}
}

// drained runs a reset or remove with the drain timeout, ended early by
// Close.
func (s *Server) drained(op func(context.Context) error) error {
	d := s.DrainTimeout
	if d == 0 {
		d = DefaultDrainTimeout
	}
	ctx, cancel := context.WithTimeout(s.ctx, d)
	defer cancel()
	return op(ctx)
}

func (s *Server) evict(name string) {
	if s.Conns != nil {
		s.Conns.CloseTenant(name)
	}
}

// codeOf classifies a registry error.
func codeOf(err error) Code {
	switch {
	case errors.Is(err, tenant.ErrBadName):
		return CodeBadName
	case errors.Is(err, tenant.ErrNotFound):
		return CodeNotFound
	case errors.Is(err, tenant.ErrExists):
		return CodeExists
	case errors.Is(err, tenant.ErrBusy), errors.Is(err, context.DeadlineExceeded):
		return CodeBusy
	case errors.Is(err, tenant.ErrClosed), errors.Is(err, context.Canceled):
		return CodeClosed
	}
	return CodeFailed
}
