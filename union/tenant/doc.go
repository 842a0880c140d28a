// Package tenant keeps the tenants of a multi-guest server: many guests,
// each with its own private upper layer, over one set of shared lower
// layers (issue 10). It knows nothing about 9P.
//
// # Pieces
//
// Names (name.go): a tenant name is one plain path component from a small
// alphabet (letters, digits, '_', '-', '.'; first a letter or digit; at
// most 255 bytes). ValidName is the only gate: every entry point checks it.
//
// Layout (layout.go): tenant NAME lives in DIR/NAME with its upper layer in
// DIR/NAME/upper, its overlayfs work directory in DIR/NAME/work (both made
// on first use, and required to be real directories on one filesystem) and
// its own quota, if set, in DIR/NAME/quota. Names starting with '.' are the
// registry's own temporary entries.
//
// Registry (registry.go): the table of tenants. Open loads DIR, refusing a
// tenant whose directories are symbolic links or whose work directory is on
// another filesystem than its upper, and counts each upper. Acquire gives a
// connection a Handle on its tenant's union, which is opened with
// union.Open over the shared lower paths at the tenant's first use and
// shared by all its connections. Reset and Remove take an evict callback
// that ends the tenant's connections, wait until every Handle is released
// (new Acquires wait meanwhile), then replace the upper and work
// directories by empty ones (Reset) or delete DIR/NAME (Remove).
//
// Host safety (walk.go, remove.go): every walk of a tenant's tree is
// descriptor-relative from the tenants directory, one name at a time, with
// openat2 refusing symbolic links and mount crossings; it goes back up
// through ".." only after checking it lands where it came from, so it holds
// two descriptors whatever the depth. A tenant directory, upper, or any
// directory inside replaced by a symbolic link while a reset or remove
// runs is removed as a link (inside DIR) or refused (DIR/NAME itself);
// no link is followed out of DIR. The one thing a walk cannot prevent is
// a host process moving a directory out of DIR while the walk is inside
// it: the walk then finishes that directory (the tenant's own data) and
// stops with an error when ".." no longer leads back, never going on in
// the directory it was moved to.
//
// Quotas (ledger.go, count.go): a Ledger per tenant holds the bytes and
// inodes its upper uses against its quota. Measure recounts a tree with
// du's semantics (documented there) at start and after a reset; Charge
// answers EDQUOT, changing nothing, when a change would exceed the quota.
//
// # Wiring
//
// Done (issue 10's wiring):
//
//  1. p9srv.Tenants (p9srv/tenants.go) binds each connection to a tenant:
//     ServeTenant serves a listener bound to one tenant NAME, or, for a
//     listener the operator marks trusted (p9srv.AnameTenant, "tenant=*"),
//     the existing tenant the aname of the connection's first Tattach
//     names (p9srv/anamebind.go). A connection is entered in the tenant's
//     set before Registry.Acquire and leaves it after Handle.Release, and
//     is served Handle.Union() as its Export. Tenants.CloseTenant (the
//     control.Connections that Reset and Remove's evict calls) closes the
//     tenant's connections.
//
//  2. `union9p serve --lower ... --tenants DIR --control SOCK --listen
//     ADDR,tenant=NAME` (cmd/union9p/servetenants.go) opens the Registry
//     (AutoCreate off: the listeners' tenants are added at start, others
//     by `union9p tenant add`), makes tenant unix sockets owner-only with
//     control.Listen, and serves control.Server; Registry.Close runs after
//     the 9P server has stopped.
//
//  3. Quotas are enforced: each tenant's union charges its Ledger through
//     union.Options.Quota (charge.go; the rules are union/quota.go's),
//     so a change past the quota answers EDQUOT with nothing made, and
//     the ledger equals Measure (and du) whenever the union is idle.
//
//  4. The tenants share one lower side: Open opens a union.LowerSet over
//     Config.Lowers once, and every tenant's union is opened with it
//     (lower directory descriptors, the names of lower directories,
//     stable-id numbering, listings of directories without an upper
//     part); each tenant keeps only its upper state.
//
// Still to do: union.Open takes paths and resolves them again, so
// openUnion checks the layout by descriptors before and the upper's
// identity after. When union can open an upper from descriptors (or an
// os.Root), pass the descriptors openLayers already checked and drop the
// identity check.
//
// # Concurrency
//
// Registry methods and Ledger methods are safe for concurrent use. The
// registry's mutex guards its table and each tenant's state and is never
// held across a walk of a tenant's tree; a tenant under a reset, remove,
// add or union open is marked busy, and Acquire waits for the mark to go.
package tenant
