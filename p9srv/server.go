package p9srv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/union9p/union9p/union"
)

// DefaultMaxMsize is the largest message size granted when Config.MaxMsize
// is 0: 4 MiB.
const DefaultMaxMsize = 4 << 20

// DefaultMaxFids is the number of fids one connection may hold when
// Config.MaxFids is 0. Each fid holds host descriptors; Linux holds about
// one per cached dentry and open file.
const DefaultMaxFids = 1 << 16

// DefaultHandlers is how many requests of one connection are handled at
// once when Config.Handlers is 0.
const DefaultHandlers = 16

// minMsize is the smallest MaxMsize accepted: room for a few directory
// entries and path names.
const minMsize = 4096

// Config describes a Server.
type Config struct {
	// Union, SquashUID and SquashGID are the Export of ServeConn and
	// Serve. Union may be nil when every connection is served with
	// ServeConnExport or ServeExport.
	Union                *union.Union
	SquashUID, SquashGID *uint32
	// MaxMsize caps the msize a client may negotiate (0: DefaultMaxMsize).
	MaxMsize uint32
	// MaxFids caps the fids of one connection (0: DefaultMaxFids).
	MaxFids int
	// Handlers caps the requests of one connection handled at once (0:
	// DefaultHandlers). A connection with that many requests in hand is
	// not read further until one is answered.
	Handlers int
	// Logger receives errors and, with Trace, one line per 9P message.
	// Nil discards.
	Logger *slog.Logger
	// Trace logs every request and response at Info level.
	Trace bool
}

// Server serves unions over any number of connections. Connections of the
// same union see each other's changes, renames included. Its methods are
// safe for concurrent use.
type Server struct {
	cfg      Config
	maxMsize uint32
	maxFids  int
	handlers int
	log      *slog.Logger
	bufs     bufPool
	watch    watchdog
	// lastExhaustion is when noteExhaustion last logged (unix ns).
	lastExhaustion atomic.Int64

	mu        sync.Mutex
	closing   bool
	conns     map[*conn]struct{}
	listeners map[net.Listener]struct{}
	unions    map[*union.Union]*unionState
	active    sync.WaitGroup // connections; Add only under mu while !closing
}

// ErrServerClosed is returned by ServeConn and Serve after Shutdown.
var ErrServerClosed = errors.New("p9srv: server closed")

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	s := &Server{cfg: cfg, maxMsize: cfg.MaxMsize, maxFids: cfg.MaxFids, handlers: cfg.Handlers, log: cfg.Logger,
		conns: make(map[*conn]struct{}), listeners: make(map[net.Listener]struct{}),
		unions: make(map[*union.Union]*unionState)}
	if s.maxMsize == 0 {
		s.maxMsize = DefaultMaxMsize
	}
	if s.maxMsize < minMsize || s.maxMsize > DefaultMaxMsize {
		return nil, fmt.Errorf("p9srv: msize %d out of range [%d, %d]", s.maxMsize, minMsize, DefaultMaxMsize)
	}
	if s.maxFids <= 0 {
		s.maxFids = DefaultMaxFids
	}
	if s.handlers <= 0 {
		s.handlers = DefaultHandlers
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.watch.srv = s
	return s, nil
}

func (s *Server) defaultExport() (Export, error) {
	if s.cfg.Union == nil {
		return Export{}, errors.New("p9srv: no union configured for this connection")
	}
	return Export{Union: s.cfg.Union, SquashUID: s.cfg.SquashUID, SquashGID: s.cfg.SquashGID}, nil
}

// ServeConn serves one client connection with the Config's export; see
// ServeConnExport.
func (s *Server) ServeConn(rw io.ReadWriteCloser) error {
	x, err := s.defaultExport()
	if err != nil {
		rw.Close()
		return err
	}
	return s.ServeConnExport(rw, x)
}

var connCounter atomic.Uint64

// ServeConnExport serves export x over one client connection (a socket, a
// socketpair end, stdin/stdout, a virtio-serial port) and blocks until it
// ends: the client closed it, sent a frame that cannot be parsed, or
// Shutdown stopped it. It closes rw. The error is nil for an orderly end.
func (s *Server) ServeConnExport(rw io.ReadWriteCloser, x Export) error {
	if x.Union == nil {
		rw.Close()
		return errors.New("p9srv: no union")
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		rw.Close()
		return ErrServerClosed
	}
	s.active.Add(1)
	s.mu.Unlock()
	st := s.stateFor(x.Union)
	c := newConn(s, rw, x, st)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	closing := s.closing
	s.mu.Unlock()
	if closing {
		c.stopReading()
	}
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.dropState(st)
		s.active.Done()
	}()

	s.log.Debug("connection opened", "conn", c.id)
	err := c.serve()
	if err != nil {
		s.log.Info("connection dropped", "conn", c.id, "err", err)
	} else {
		s.log.Debug("connection closed", "conn", c.id)
	}
	return err
}

// Serve accepts connections on ln and serves the Config's export; see
// ServeExport.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	x, err := s.defaultExport()
	if err != nil {
		ln.Close()
		return err
	}
	return s.ServeExport(ctx, ln, x)
}

// ServeExport accepts connections on ln and serves x on each in its own
// goroutine until ln fails, ctx is done or Shutdown is called; it then
// closes ln and returns (nil for ctx or Shutdown). Connections already
// accepted go on until Shutdown. Running out of descriptors (EMFILE,
// ENFILE) or memory while accepting is waited out, not fatal.
func (s *Server) ServeExport(ctx context.Context, ln net.Listener, x Export) error {
	if x.Union == nil {
		ln.Close()
		return errors.New("p9srv: no union")
	}
	return s.acceptLoop(ctx, ln, func(nc net.Conn) { go s.ServeConnExport(nc, x) })
}

// acceptLoop accepts on ln and gives each connection to serve (which must
// not block) until ln fails, ctx is done or Shutdown is called; see
// ServeExport.
func (s *Server) acceptLoop(ctx context.Context, ln net.Listener, serve func(net.Conn)) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	const minBackoff = 5 * time.Millisecond
	backoff := minBackoff
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || s.isClosing() {
				return nil
			}
			if isTemporaryAcceptError(err) {
				// Out of descriptors and the like: wait, do not spin.
				s.log.Warn("accept failed; retrying", "addr", ln.Addr().String(), "err", err, "wait", backoff)
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
			return err
		}
		backoff = minBackoff
		s.sizeSendBuffer(nc)
		serve(nc)
	}
}

// sizeSendBuffer lets a unix socket take two of the largest responses at
// once: with the default buffer a 1 MiB Rread leaves in many pieces, each
// a wake-up on both sides. TCP sizes its buffers itself.
func (s *Server) sizeSendBuffer(nc net.Conn) {
	if uc, ok := nc.(*net.UnixConn); ok {
		uc.SetWriteBuffer(2 * int(s.maxMsize))
	}
}

// isTemporaryAcceptError reports errors after which accepting again later
// may work: resource exhaustion and connections that died in the queue.
func isTemporaryAcceptError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.ENOBUFS,
		syscall.ECONNABORTED, syscall.EINTR, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops accepting, lets every connection finish the requests it
// has read (new requests are not read), closes the connections and returns
// when all are done. If ctx ends first the remaining connections are
// closed at once and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	for _, c := range conns {
		c.stopReading()
	}
	done := make(chan struct{})
	go func() {
		s.active.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.closeConn()
		}
		<-done
		return ctx.Err()
	}
}
