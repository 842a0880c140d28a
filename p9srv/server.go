package p9srv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hugelgupf/p9/p9"
	"github.com/union9p/union9p/union"
)

// DefaultMaxMsize is the largest message size granted when Config.MaxMsize
// is 0: 4 MiB, the p9 library's limit.
const DefaultMaxMsize = 4 << 20

// minMsize is the smallest MaxMsize accepted: room for a few directory
// entries and path names.
const minMsize = 4096

// Config describes a Server.
type Config struct {
	// Union is served. The caller keeps it open for the server's life.
	Union *union.Union
	// MaxMsize caps the msize a client may negotiate (0: DefaultMaxMsize).
	MaxMsize uint32
	// SquashUID and SquashGID, when set, own everything clients create or
	// chown, whatever the client asks (for untrusted guests).
	SquashUID, SquashGID *uint32
	// Logger receives errors and, with Trace, one line per 9P message.
	// Nil discards.
	Logger *slog.Logger
	// Trace logs every request and response at Info level.
	Trace bool
}

// Server serves one union over any number of connections, which all see
// the same tree through one p9.Server. Its methods are safe for concurrent
// use.
type Server struct {
	cfg      Config
	maxMsize uint32
	log      *slog.Logger
	p9       *p9.Server
	requests requestTable
	locks    lockTable

	mu        sync.Mutex
	closing   bool
	conns     map[*tap]struct{}
	listeners map[net.Listener]struct{}
	active    sync.WaitGroup // ServeConn calls; Add only under mu while !closing
}

// ErrServerClosed is returned by ServeConn and Serve after Shutdown.
var ErrServerClosed = errors.New("p9srv: server closed")

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Union == nil {
		return nil, errors.New("p9srv: no union")
	}
	s := &Server{cfg: cfg, maxMsize: cfg.MaxMsize, log: cfg.Logger,
		conns: make(map[*tap]struct{}), listeners: make(map[net.Listener]struct{})}
	if s.maxMsize == 0 {
		s.maxMsize = DefaultMaxMsize
	}
	if s.maxMsize < minMsize || s.maxMsize > DefaultMaxMsize {
		return nil, fmt.Errorf("p9srv: msize %d out of range [%d, %d]", s.maxMsize, minMsize, DefaultMaxMsize)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.p9 = p9.NewServer(attacher{s}, p9.WithServerLogger(libraryLogger{s.log}))
	return s, nil
}

// ServeConn serves one client connection (a socket, a socketpair end,
// stdin/stdout, a virtio-serial port) and blocks until it ends: the client
// closed it, sent a frame that cannot be parsed, or Shutdown stopped it.
// It closes rw. The error is nil for an orderly end.
func (s *Server) ServeConn(rw io.ReadWriteCloser) error {
	t := newTap(s, rw)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		rw.Close()
		return ErrServerClosed
	}
	s.conns[t] = struct{}{}
	s.active.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, t)
		s.mu.Unlock()
		s.active.Done()
	}()

	s.log.Debug("connection opened", "conn", t.id)
	s.p9.Handle(t, t) // returns after the last in-flight request is answered
	t.Close()
	err := t.err()
	if err != nil {
		s.log.Info("connection dropped", "conn", t.id, "err", err)
	} else {
		s.log.Debug("connection closed", "conn", t.id)
	}
	return err
}

// Serve accepts connections on ln and serves each in its own goroutine
// until ln fails, ctx is done or Shutdown is called; it then closes ln and
// returns (nil for ctx or Shutdown). Connections already accepted go on
// until Shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
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

	backoff := 5 * time.Millisecond
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || s.isClosing() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporaryAcceptError(err) {
				// Out of descriptors and the like: wait, do not spin.
				s.log.Warn("accept", "err", err)
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
			return err
		}
		backoff = 5 * time.Millisecond
		s.sizeSendBuffer(conn)
		go s.ServeConn(conn)
	}
}

// sizeSendBuffer lets a unix socket take two of the largest responses at
// once: with the default buffer a 1 MiB Rread leaves in many pieces, each
// a wake-up on both sides. TCP sizes its buffers itself.
func (s *Server) sizeSendBuffer(conn net.Conn) {
	if uc, ok := conn.(*net.UnixConn); ok {
		uc.SetWriteBuffer(2 * int(s.maxMsize))
	}
}

func isTemporaryAcceptError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "too many open files") || strings.Contains(msg, "connection aborted")
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
	conns := make([]*tap, 0, len(s.conns))
	for t := range s.conns {
		conns = append(conns, t)
	}
	s.mu.Unlock()

	for _, t := range conns {
		t.stopReading()
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
		for _, t := range conns {
			t.Close()
		}
		<-done
		return ctx.Err()
	}
}

// libraryLogger passes the p9 library's messages (handler panics,
// connection errors) to slog at Debug level, dropping its per-message
// lines, which Config.Trace replaces.
type libraryLogger struct{ log *slog.Logger }

func (l libraryLogger) Printf(format string, v ...interface{}) {
	if strings.HasPrefix(format, "recv ") || strings.HasPrefix(format, "send ") {
		return
	}
	if strings.HasPrefix(format, "panic") {
		l.log.Error("p9 library: " + fmt.Sprintf(format, v...))
		return
	}
	l.log.Debug("p9 library: " + fmt.Sprintf(format, v...))
}

func (l libraryLogger) Print(v ...interface{}) { l.log.Debug("p9 library: " + fmt.Sprint(v...)) }
