package p9srv

import (
	"sync"

	"github.com/union9p/union9p/union"
)

// Export is what one connection serves and how it treats its clients'
// identities. It is a property of the connection (ServeConnExport) or of
// the listener it came in on (ServeExport), so that one Server can serve
// several unions, each connection bound to one.
type Export struct {
	// Union is served. The caller keeps it open while connections use it.
	Union *union.Union
	// SquashUID and SquashGID, when set, own everything clients create or
	// chown, whatever the client asks (for untrusted guests).
	SquashUID, SquashGID *uint32
}

// squash is the export's rule for untrusted clients (union.Squash).
func (x *Export) squash() union.Squash { return union.Squash{UID: x.SquashUID, GID: x.SquashGID} }

// unionState is what every connection serving one union shares: the names
// fids stand on (renames seen across connections) and the record locks.
// It lives while some connection serves the union.
type unionState struct {
	u *union.Union
	// nsMu orders walks against renames: a walk looks up and registers
	// its names under the read lock, a rename renames and moves the
	// registered names under the write lock, so no fid is left with a
	// node named after a rename it did not see.
	nsMu  sync.RWMutex
	names *names
	locks lockTable
	conns int // guarded by Server.mu
}

// stateFor returns the shared state of u, counting one more connection.
func (s *Server) stateFor(u *union.Union) *unionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.unions[u]
	if st == nil {
		st = &unionState{u: u, names: newNames()}
		s.unions[u] = st
	}
	st.conns++
	return st
}

// dropState counts one connection of st less.
func (s *Server) dropState(st *unionState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.conns--; st.conns == 0 {
		delete(s.unions, st.u)
	}
}
