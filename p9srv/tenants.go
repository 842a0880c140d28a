package p9srv

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/union9p/union9p/union/tenant"
	"golang.org/x/sys/unix"
)

// Tenants serves the tenants of a tenant.Registry (package union/tenant):
// each connection is bound to one tenant and served that tenant's union,
// and the connections of each tenant are kept so that a reset or remove
// can end them (CloseTenant, the control.Connections a control.Server
// takes).
//
// A connection's tenant comes from the listener it was accepted on
// (ServeTenant with a name), never from what the client sends, except on
// a listener the operator marked trusted (ServeTenant with AnameTenant),
// where the aname of the client's first Tattach names it (see anamebind.go).
//
// Concurrency: its methods are safe for concurrent use. A connection is
// entered in the set under its tenant's name BEFORE it acquires the
// tenant, and leaves it after releasing its Handle, so a CloseTenant that
// runs while a reset waits for the tenant's Handles always finds every
// connection holding one.
type Tenants struct {
	Registry *tenant.Registry
	// SquashUID and SquashGID, when set, apply to every tenant's
	// connections (see Export).
	SquashUID, SquashGID *uint32

	mu    sync.Mutex
	conns map[string]map[net.Conn]struct{}
}

// AnameTenant, given to ServeTenant as the tenant name, lets each
// connection's first Tattach name its tenant in its aname. Only for
// listeners whose clients are trusted to choose.
const AnameTenant = "*"

// enter records nc as a connection of tenant name.
func (ts *Tenants) enter(name string, nc net.Conn) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.conns == nil {
		ts.conns = map[string]map[net.Conn]struct{}{}
	}
	set := ts.conns[name]
	if set == nil {
		set = map[net.Conn]struct{}{}
		ts.conns[name] = set
	}
	set[nc] = struct{}{}
}

// leave forgets nc.
func (ts *Tenants) leave(name string, nc net.Conn) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if set := ts.conns[name]; set != nil {
		delete(set, nc)
		if len(set) == 0 {
			delete(ts.conns, name)
		}
	}
}

// CloseTenant closes every connection of the tenant. Their readers end,
// the requests they have in hand finish (their answers are lost), their
// fids are clunked and their Handles released; the registry waits for
// that. It does not wait itself and never calls the registry.
func (ts *Tenants) CloseTenant(name string) {
	ts.mu.Lock()
	conns := make([]net.Conn, 0, len(ts.conns[name]))
	for nc := range ts.conns[name] {
		conns = append(conns, nc)
	}
	ts.mu.Unlock()
	for _, nc := range conns {
		closeClient(nc)
	}
}

// Count returns how many connections of the tenant are open.
func (ts *Tenants) Count(name string) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.conns[name])
}

// ServeTenant accepts connections on ln and serves each the union of
// tenant name (or, with AnameTenant, of the tenant its first Tattach
// names) until ln fails, ctx is done or Shutdown is called, as
// ServeExport. name is checked first: an invalid name is an error at once.
func (s *Server) ServeTenant(ctx context.Context, ln net.Listener, ts *Tenants, name string) error {
	if name != AnameTenant {
		if err := tenant.ValidName(name); err != nil {
			ln.Close()
			return err
		}
	}
	return s.acceptLoop(ctx, ln, func(nc net.Conn) {
		go s.serveTenantConn(ctx, nc, ts, name)
	})
}

// serveTenantConn binds nc to its tenant, serves it and releases it.
func (s *Server) serveTenantConn(ctx context.Context, nc net.Conn, ts *Tenants, name string) {
	if name == AnameTenant {
		s.serveAnameConn(ctx, nc, ts)
		return
	}
	ts.enter(name, nc)
	defer ts.leave(name, nc)
	h, err := ts.Registry.Acquire(ctx, name)
	if err != nil {
		s.log.Warn("connection refused: tenant not available", "tenant", name, "err", err)
		nc.Close()
		return
	}
	defer h.Release()
	s.ServeConnExport(nc, Export{Union: h.Union(), SquashUID: ts.SquashUID, SquashGID: ts.SquashGID})
}

// tenantErrno is the errno a client gets when the tenant it names cannot
// be served: EINVAL for a name that cannot be a tenant, ENOENT for one
// that does not exist, EAGAIN while it is being reset or removed, EIO
// otherwise (the log says why).
func tenantErrno(err error) unix.Errno {
	switch {
	case errors.Is(err, tenant.ErrBadName):
		return unix.EINVAL
	case errors.Is(err, tenant.ErrNotFound):
		return unix.ENOENT
	case errors.Is(err, tenant.ErrBusy), errors.Is(err, context.DeadlineExceeded):
		return unix.EAGAIN
	}
	return unix.EIO
}
