// Package p9srv serves a union (package union) to 9P2000.L clients, above
// all the Linux v9fs client.
//
// # Fids, files and nodes
//
// Each fid the client holds is a File of the p9 library
// (github.com/hugelgupf/p9). Here a File holds a *union.Node (one name in
// the merged tree, with its own descriptors), the uid of the Tattach it
// descends from, and, after Tlopen or Tlcreate, a *union.File. Walking
// makes a new node per name; cloning a fid retains the node. QIDs carry the
// union's stable id as Path, so an object keeps its identity across
// copy-up, and the type from its mode. Errors leave as linux.Errno values
// with the union's errno (see errno.go).
//
// All connections share one p9.Server, so renames made through one
// connection are seen by fids of every other (File.Renamed).
//
// # The library's gaps and how they are closed
//
// The p9 library drops some of what Linux sends. Each connection passes
// through a wire tap (wiretap.go) that sees the raw frames: the library
// reads one frame at a time and handles it in the goroutine that read it,
// so the tap records, per goroutine, what the library will drop
// (requests.go), and the File method called for that frame finds it there.
// Only Tattach, Tlcreate, Tmkdir, Tsetattr, Txattrwalk, Tlock and Tgetlock
// are recorded; everything else passes through without being copied.
//
//   - Identity: Attacher.Attach gets no arguments. Linux attaches once per
//     user with n_uname; the tap records it and the root File keeps it, so
//     that files created through that attach (Tlcreate, Tmkdir, Tsymlink,
//     Tmknod, which carry only a gid) are owned by that uid. Without the
//     gap closed everything would belong to the server's user.
//     Config.SquashUID/SquashGID override all ownership for untrusted
//     clients.
//   - Mode bits: the library masks Tlcreate, Tmkdir and Tsetattr modes with
//     01777, losing setuid and setgid (an installed sudo would stop
//     working); the File takes the mode the tap recorded.
//   - Tgetlock has no handler (fcntl(F_GETLK) would fail with EIO). The tap
//     rewrites it into a non-blocking Tlock, so the library routes it to the
//     fid's File, which answers the query from the lock table; the tap turns
//     the Rlock back into an Rgetlock.
//   - Txattrwalk errors all become EINVAL in the library (a missing
//     attribute must be ENODATA), and an empty attribute list is sent as
//     one NUL byte; the tap restores the errno and the empty size.
//   - Txattrwalk also makes a second fid share the File and close it; File
//     counts those closes (file.refs).
//
// Responses the tap writes itself, or rewrites, go out whole under the
// tap's write lock, never inside another frame. The library's
// "9P2000.L.Google" extension messages are refused: Linux does not send
// them and they would reach File methods without a recorded request.
//
// Record locks live in the server (locktable.go), per object and owner
// (connection, client name, pid): they conflict between clients, need no
// write access to the file (flock(LOCK_EX) on a read-only open), and the
// server never blocks on them. A fid's locks go when it is closed.
//
// Txattrcreate values are capped at Linux's 64 KiB before the library
// buffers them.
//
// # Transports
//
// ServeConn serves any byte stream (socket, socketpair, stdin/stdout,
// virtio-serial port); Serve accepts from a listener made by Listen
// ("unix:PATH", "tcp:HOST:PORT", "vsock:PORT", "fd:N") or
// SystemdListeners. Shutdown stops reading new requests, lets the ones
// read finish, and closes the connections.
package p9srv
