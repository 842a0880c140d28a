// Package p9srv serves unions (package union) to 9P2000.L clients, above
// all the Linux v9fs client. It owns the protocol engine: the codec is
// package p9srv/wire (shared with the test client test/p9wire), and this
// package reads, dispatches and answers requests itself.
//
// # Connections and requests
//
// Each connection (conn.go) has a reader that decodes every T-message into
// a typed request (wire.DecodeRequest) and a bounded set of handlers:
// Config.Handlers requests of one connection are handled at once, so a
// slow request (a copy-up, a large read) does not hold up the others, and
// a client that stops reading its answers stalls only itself, with memory
// bounded by the handlers times its msize. A request the client waits on
// alone is handled by the reader itself (no hand-off between goroutines);
// a watchdog (watchdog.go) starts a new reader if that takes more than a
// millisecond. Each response is built in a pooled buffer (bufpool.go) and
// written whole with one write; reads go from the host straight into the
// response frame, writes from the request frame.
//
// Tflush follows the protocol (flush.go): the flushed request's response,
// if any, goes out before Rflush; a Tflush of a tag not in flight, or of
// its own tag, is answered at once. Tversion waits for the requests in
// hand and drops every fid of the connection.
//
// # Fids, names and nodes
//
// A connection's fid table (fids.go) maps fid numbers to a *union.Node,
// the uid of the attach it descends from (the owner of what is created
// through it) and, after Tlopen or Tlcreate, a *union.File. Handlers get
// the request whole, with the full mode (setuid and setgid included) and
// every other field as the client sent it. QIDs carry the union's stable
// id as Path, so an object keeps its identity across copy-up, and the type
// from its mode. Errors leave as the union's errno (errno.go); EMFILE,
// ENFILE and ENOMEM from the host fail the request that met them, are
// logged, and the server goes on. A connection holds at most
// Config.MaxFids fids; past that, requests for new fids get EMFILE and
// the log says so.
//
// Union nodes remember their parent and name, which copy-up uses. So that
// a rename through one fid reaches the nodes of every fid below the
// renamed name, on any connection of the same union, the names fids stand
// on are tracked per union (names.go) — only while some fid stands on or
// below them: nothing is kept for a name after its last fid is clunked.
//
// # Exports and identity
//
// What a connection serves is an Export (export.go): the union and the
// identity settings (squash). It is bound per connection (ServeConnExport)
// or per listener (ServeExport), so one Server can serve several unions;
// connections of one union share its names and its record locks.
// Tenants (tenants.go) serves the tenants of a union/tenant registry: a
// listener is bound to one tenant, whose union becomes each connection's
// Export, and a tenant's connections can be closed for a reset.
// Linux attaches once per user with n_uname; files created through that
// attach (Tlcreate, Tmkdir, Tsymlink, Tmknod, which carry only a gid) are
// owned by that uid. Export.SquashUID/SquashGID override all ownership for
// untrusted clients, who may then not make device nodes.
//
// Record locks live in the server (locktable.go), per object and owner
// (connection, client name, pid): they conflict between clients, need no
// write access to the file (flock(LOCK_EX) on a read-only open), and the
// server never blocks on them. A fid's locks go when it is closed.
//
// Extended attributes travel as Linux sends them (xattr.go): Txattrwalk
// values and Txattrcreate buffers are capped at Linux's 64 KiB.
//
// # Transports
//
// ServeConn serves any byte stream (socket, socketpair, stdin/stdout,
// virtio-serial port); Serve accepts from a listener made by Listen
// ("unix:PATH", "tcp:HOST:PORT", "vsock:PORT", "fd:N") or
// SystemdListeners, and waits out EMFILE/ENFILE instead of failing.
// Shutdown stops reading new requests, lets the ones read finish, and
// closes the connections.
package p9srv
