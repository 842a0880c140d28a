package p9srv

import (
	"runtime"
	"sync"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
)

// request is what the wire tap learned from one client frame that the p9
// library does not pass on to File methods, plus what a File method leaves
// for the tap to put into the response. It is created by the tap in the
// library goroutine that reads the frame; that same goroutine then runs the
// handler (and so the File method) and writes the response, so its fields
// need no locking.
type request struct {
	goroutine uint64
	conn      uint64 // the connection (tap id) the frame came on
	tag       uint16
	typ       uint8 // message type as the client sent it (Tgetlock, not Tlock)
	parsed    bool  // the frame's fields below were decoded

	attachUID uint32 // Tattach: n_uname, or the uname resolved
	mode      uint32 // Tlcreate, Tmkdir, Tsetattr: the mode before the library masks it

	getlock *lockQuery // Tgetlock: the query and, once answered, the result

	// errno, when set by a File method, replaces the errno of an Rlerror
	// answer (the library answers a failed Txattrwalk with EINVAL).
	errno linux.Errno
	// emptyXattrList: the Txattrwalk listed no names; its Rxattrwalk
	// size becomes 0.
	emptyXattrList bool
}

// requestTable finds the request a library goroutine is handling. It is
// shared by all connections of a Server.
type requestTable struct {
	mu          sync.Mutex
	byGoroutine map[uint64]*request
}

// register records r as the request of the calling goroutine, replacing
// whatever that goroutine handled before.
func (t *requestTable) register(r *request) {
	r.goroutine = goroutineID()
	t.mu.Lock()
	if t.byGoroutine == nil {
		t.byGoroutine = make(map[uint64]*request)
	}
	t.byGoroutine[r.goroutine] = r
	t.mu.Unlock()
}

// current returns the request of the calling goroutine if it is of type
// typ and its fields were decoded, else nil.
func (t *requestTable) current(typ uint8) *request {
	id := goroutineID()
	t.mu.Lock()
	r := t.byGoroutine[id]
	t.mu.Unlock()
	if r == nil || r.typ != typ || !r.parsed {
		return nil
	}
	return r
}

// forget drops r once its response is written or its connection ended.
func (t *requestTable) forget(r *request) {
	t.mu.Lock()
	if t.byGoroutine[r.goroutine] == r {
		delete(t.byGoroutine, r.goroutine)
	}
	t.mu.Unlock()
}

// goroutineID returns the runtime's id of the calling goroutine, parsed from
// the first line of its stack trace ("goroutine 42 [running]:"). Go has no
// API for it; this is the one place that relies on that format, and only
// the few message types listed in tapInspects pay for it (about a
// microsecond).
func goroutineID() uint64 {
	var buf [40]byte
	n := runtime.Stack(buf[:], false)
	const prefix = "goroutine "
	var id uint64
	for _, c := range buf[len(prefix):n] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}

// fullMode returns the permission bits (07777) of the request of type typ
// the calling goroutine handles: as the client sent them, setuid and setgid
// included, which the library's masked value (masked) lacks.
func (s *Server) fullMode(typ uint8, masked p9.FileMode) uint32 {
	if r := s.requests.current(typ); r != nil {
		return r.mode & 0o7777
	}
	return uint32(masked) & 0o7777
}
