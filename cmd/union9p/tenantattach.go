package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/union9p/union9p/p9srv"
	"github.com/union9p/union9p/union/tenant"
)

// The attach socket: how `union9p qemu --tenant NAME` attaches guests to
// a tenant of a running `serve --tenants`. The server makes it beside its
// control socket (CONTROL.attach), owner-only as that one (control.Listen),
// before the sandbox forbids making sockets. A courier hands over a guest's
// connection on it together with the tenant's name (qemu.AttachFD), and the
// connection is served as that tenant: the name comes from the courier's
// command line, which the operator's union9p qemu wrote, never from the
// guest, and only the server's user or root can reach the socket.

// attachSuffix names the attach socket: CONTROL.attach.
const attachSuffix = ".attach"

// attachKeepAlive is the idle time after which an attached TCP connection
// is probed (three probes, a third of it apart): a guest gone without a
// word is noticed within twice this.
const attachKeepAlive = 15 * time.Second

// attachPath is the attach socket of the server whose control socket is
// ctlPath.
func attachPath(ctlPath string) string { return ctlPath + attachSuffix }

// tenantAttach takes the connections handed over on the attach socket and
// serves each as its tenant, through one queue listener per tenant served
// by p9srv.Server.ServeTenant (made on a tenant's first connection, kept
// until the server stops: a removed tenant's connections are refused by
// the registry, and served again once it is added anew). Safe for
// concurrent use.
type tenantAttach struct {
	reg *tenant.Registry
	srv *p9srv.Server
	ts  *p9srv.Tenants
	ctx context.Context
	wg  *sync.WaitGroup // the server's: a queue is one of its listeners
	log *slog.Logger

	mu     sync.Mutex
	queues map[string]*connQueue
}

// attach serves conn as tenant name, or says why not.
func (a *tenantAttach) attach(name string, conn net.Conn) error {
	if err := tenant.ValidName(name); err != nil {
		return err
	}
	found := false
	for _, in := range a.reg.List() {
		found = found || in.Name == name
	}
	if !found {
		return fmt.Errorf("tenant %s: %w (add it with: union9p tenant add %s)", name, tenant.ErrNotFound, name)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		// A guest on a tap vanishes without a FIN when QEMU exits.
		// union9p qemu shuts such connections down then (guestconns.go);
		// keepalive is kept for a peer that dies unannounced where its
		// probes can still be routed (unroutable probes are retried
		// forever, which is why it cannot be the only means).
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: attachKeepAlive, Interval: attachKeepAlive / 3, Count: 3})
	}
	a.mu.Lock()
	q := a.queues[name]
	if q == nil {
		if a.ctx.Err() != nil {
			a.mu.Unlock()
			return errors.New("the server is stopping")
		}
		q = newConnQueue(name)
		if a.queues == nil {
			a.queues = map[string]*connQueue{}
		}
		a.queues[name] = q
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := a.srv.ServeTenant(a.ctx, q, a.ts, name); err != nil && !errors.Is(err, p9srv.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				a.log.Warn("attached connections of a tenant no longer served", "tenant", name, "err", err)
			}
		}()
	}
	a.mu.Unlock()
	if err := q.put(conn); err != nil {
		return err
	}
	a.log.Info("guest attached", "tenant", name, "remote", conn.RemoteAddr())
	return nil
}

// connQueue is a net.Listener whose connections are put to it.
type connQueue struct {
	name  string
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newConnQueue(name string) *connQueue {
	return &connQueue{name: name, conns: make(chan net.Conn), done: make(chan struct{})}
}

// put hands conn to Accept; it fails once the queue is closed.
func (q *connQueue) put(conn net.Conn) error {
	select {
	case q.conns <- conn:
		return nil
	case <-q.done:
		return errors.New("the server is stopping")
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return attachAddr(q.name) }

type attachAddr string

func (a attachAddr) Network() string { return "attach" }
func (a attachAddr) String() string  { return "attach:" + string(a) }
