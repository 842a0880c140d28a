// Package control is the control socket of a multi-tenant server: the
// operator's way to list, add, reset and remove tenants and set their
// quotas while the server runs (`union9p tenant ...` is its client).
//
// # Socket
//
// A unix stream socket made by Listen: bound inside a fresh 0700 directory,
// set to 0600, then renamed to its path, so that it is never reachable by
// anyone but its owner, whatever the umask; a live server already on the
// path is refused, a stale socket replaced. Besides the file mode, the
// server accepts only peers whose uid (SO_PEERCRED) is its own or root.
//
// # Protocol
//
// One JSON object per line each way; a connection carries any number of
// requests, answered in order. Requests:
//
//	{"op":"list"}
//	{"op":"add","name":"NAME"}
//	{"op":"reset","name":"NAME"}
//	{"op":"remove","name":"NAME"}
//	{"op":"quota","name":"NAME","quota":{"bytes":N,"inodes":N}}   (0: no limit)
//	{"op":"quota","name":"NAME","default":true}                   (back to the default)
//
// Answers: {"ok":true} (with "tenants":[...] for list, each as
// tenant.Info), or {"ok":false,"code":CODE,"error":"message for a human"}
// with CODE one of the Code constants. A line longer than MaxLine, or not
// a JSON object of known fields, is answered with bad_request; a line too
// long also ends the connection.
//
// # Wiring (see package union/tenant's comment for the whole plan)
//
// The Server takes the registry (*tenant.Registry satisfies Tenants) and
// the 9P server's side of eviction (Connections), which p9srv implements
// once a connection knows its tenant; tests here use a fake. Reset and
// remove call Connections.CloseTenant through the registry, which then
// waits (up to Server.DrainTimeout) for the tenant's Handles to go.
package control
