package union

import (
	"sync"

	"golang.org/x/sys/unix"
)

// Quota accounting: how a union tells its owner (a tenant's ledger, issue
// 10) what its upper layer uses, so that a change past a quota is refused
// with EDQUOT before anything of it is made.
//
// # What is counted
//
// The usage of an upper layer is counted as tenant.Measure recounts it, so
// that a ledger kept by these hooks equals a recount (and `du`) at any
// moment the union is idle:
//
//   - bytes: the apparent size (st_size) summed over the distinct inodes of
//     the upper tree: a regular file's size (holes included), a
//     directory's own st_size (on ext4 a block per 4 KiB of entries), a
//     symbolic link's target length, 0 for devices, FIFOs, sockets and
//     whiteouts. Apparent size rather than allocated blocks because it is
//     what a client controls and sees (stat, ls -l), it is known before a
//     change is made (a write's growth is end − size; the blocks a
//     filesystem will allocate are not), and it is the same on every
//     filesystem the upper may live on.
//   - inodes: distinct inodes of the upper tree, root and whiteouts
//     included; a hard link adds none, and removing a name frees its inode
//     only when it was the last link.
//
// The work directory is not counted: objects are charged when they are
// reserved, before being built there.
//
// # When
//
// A change reserves what it adds before it touches the upper (Reserve:
// EDQUOT, nothing made) and releases what it frees after it succeeded;
// a failed change releases its reservation. What only the host knows (how
// much a directory grows when an entry is added, the exact size of a
// fresh directory) is read with fstat before and after the change and
// adjusted without a check (Adjust): at most a directory block past the
// quota, after which further changes are refused.
//
//   - create, mkdir, symlink, mknod: one inode and the new object's size
//     (a symlink's target, a fresh directory's size); link: none;
//   - write and truncate: the growth of st_size, reserved before (a write
//     past the quota fails whole with EDQUOT, writing nothing);
//     shrinking releases;
//   - copy-up: one inode and the object's size (none for a file copied up
//     to be truncated), per object copied, parents each on their own;
//   - unlink, rmdir, rename over a name: the removed object (if it was its
//     last link; a directory with the whiteouts it held) is released, a
//     whiteout left in its place is one inode.
//
// Not counted: a file's size changes after its last name is gone (open
// and unlinked: du does not see it either) and xattrs (du does not count
// them; a setxattr past the quota fails only by its copy-up).
//
// # Concurrency
//
// Namespace changes account under Union.nsMu, where they already check
// and change, so a directory's size before and after is theirs alone.
// Size changes of a file (write, truncate, open with O_TRUNC) hold one of
// sizeLocks, chosen by inode number: writes inside the file's size share
// it, a write that grows the file or a truncate hold it alone, so a
// growth is read, reserved and settled without another size change in
// between. A removal of a regular file (unlink, rename over it) holds its
// lock alone too, under nsMu (never the other way round), so that what it
// frees is the size no write is changing. The Quota's methods must be
// safe for concurrent use.

// Quota is what a union charges its upper layer's usage to
// (Options.Quota). Amounts passed to Reserve and Release are never
// negative.
type Quota interface {
	// Reserve adds bytes and inodes if the result stays within the
	// quota; otherwise it changes nothing and returns an error wrapping
	// unix.EDQUOT.
	Reserve(bytes, inodes int64) error
	// Release subtracts what was reserved and not used, or freed.
	Release(bytes, inodes int64)
	// Adjust adds bytes and inodes (either sign) without a check, for a
	// change that was made and cannot be refused.
	Adjust(bytes, inodes int64)
}

// usage is an amount of bytes and inodes.
type usage struct{ bytes, inodes int64 }

// quotaState is the union's accounting state; unused without a Quota.
type quotaState struct {
	q Quota
	// freshDir is the st_size of an empty directory on the upper's
	// filesystem, probed at Open: what a mkdir or a directory's copy-up
	// reserves.
	freshDir int64
	// sizeLocks serialize size changes of one inode (by inode number).
	sizeLocks [64]sync.RWMutex
}

// initQuota probes the size of a fresh directory in the work directory.
func (u *Union) initQuota(q Quota) error {
	u.quota.q = q
	if q == nil || u.upper == nil {
		return nil
	}
	tmp := workName()
	if err := unix.Mkdirat(u.work, tmp, 0o700); err != nil {
		return err
	}
	defer unix.Unlinkat(u.work, tmp, unix.AT_REMOVEDIR)
	var st unix.Stat_t
	if err := lstatAt(u.work, tmp, &st); err != nil {
		return err
	}
	u.quota.freshDir = st.Size
	return nil
}

// reservation is one change's charge: what it adds and frees, and what
// of that was reserved ahead.
type reservation struct {
	u         *Union
	add, free usage
	held      usage
}

// reserve reserves what a change adds beyond what it frees (EDQUOT if
// that does not fit, and nothing is reserved). Unless it fails, the
// caller calls done once the change has succeeded or failed. Without a
// Quota it returns nil, whose methods do nothing.
func (u *Union) reserve(add, free usage) (*reservation, error) {
	if u.quota.q == nil {
		return nil, nil
	}
	held := usage{max(0, add.bytes-free.bytes), max(0, add.inodes-free.inodes)}
	if held.bytes > 0 || held.inodes > 0 {
		if err := u.quota.q.Reserve(held.bytes, held.inodes); err != nil {
			return nil, err
		}
	}
	return &reservation{u: u, add: add, free: free, held: held}, nil
}

// added says that the object the change made has st_size actual rather
// than the size reserved for it; done charges the difference.
func (r *reservation) added(actual int64) {
	if r != nil {
		r.add.bytes = actual
	}
}

// addedDir is added with the size of the object the change made as name
// in dirfd if it is a directory, whose fresh size only the host knows.
// Other objects were reserved their exact size, and a file's may have
// grown since by a write that charged the growth itself (the name is
// visible to lookups that do not take nsMu). Call with nsMu held: no
// entry can be added to the new directory meanwhile.
func (r *reservation) addedDir(dirfd int, name string) {
	var st unix.Stat_t
	if r != nil && lstatAt(dirfd, name, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		r.added(st.Size)
	}
}

// done settles the reservation: after a change that was made (ok), the
// usage becomes what it was plus add minus free; after one that was not,
// the reservation is given back.
func (r *reservation) done(ok bool) {
	if r == nil {
		return
	}
	q := r.u.quota.q
	if !ok {
		if r.held.bytes > 0 || r.held.inodes > 0 {
			q.Release(r.held.bytes, r.held.inodes)
		}
		return
	}
	db := r.add.bytes - r.free.bytes - r.held.bytes
	di := r.add.inodes - r.free.inodes - r.held.inodes
	if db != 0 || di != 0 {
		q.Adjust(db, di)
	}
}

// newObjectUsage is what a new object of type typ (S_IFMT bits) adds:
// one inode and its size (a fresh directory's, a symlink's target).
func (u *Union) newObjectUsage(typ uint32, size int64) usage {
	if typ == unix.S_IFDIR {
		size = u.quota.freshDir
	}
	return usage{size, 1}
}

// removedUsage is what removing the upper object name in dirfd (lstat st)
// frees: nothing for a non-directory that has other links; for a
// directory, itself and what it holds (an empty-as-merged directory holds
// only whiteouts, so one level is enough). Zero without a Quota.
func (u *Union) removedUsage(dirfd int, name string, st *unix.Stat_t) usage {
	if u.quota.q == nil {
		return usage{}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if st.Nlink > 1 {
			return usage{}
		}
		return usage{max(0, st.Size), 1}
	}
	free := usage{max(0, st.Size), 1}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return free
	}
	defer unix.Close(fd)
	names, _ := readNames(fd)
	for _, name := range names {
		var est unix.Stat_t
		if lstatAt(fd, name, &est) == nil && (est.Nlink <= 1 || est.Mode&unix.S_IFMT == unix.S_IFDIR) {
			free.bytes += max(0, est.Size)
			free.inodes++
		}
	}
	return free
}

// sizeWatch remembers the st_size of directories a namespace change is
// about to change, to adjust the usage by what the host made of them.
type sizeWatch struct {
	u     *Union
	fds   []int
	sizes []int64
}

// watchSizes reads the sizes of the upper objects open at fds (duplicates
// by inode are watched once). Call with nsMu held, and settle under the
// same hold. Without a Quota it does nothing.
func (u *Union) watchSizes(fds ...int) *sizeWatch {
	if u.quota.q == nil {
		return nil
	}
	w := &sizeWatch{u: u}
	var seen []uint64
next:
	for _, fd := range fds {
		var st unix.Stat_t
		if fd < 0 || fstat(fd, &st) != nil {
			continue
		}
		for _, ino := range seen {
			if ino == st.Ino {
				continue next
			}
		}
		seen = append(seen, st.Ino)
		w.fds = append(w.fds, fd)
		w.sizes = append(w.sizes, st.Size)
	}
	return w
}

// settle adjusts the usage by how much the watched objects' sizes changed.
func (w *sizeWatch) settle() {
	if w == nil {
		return
	}
	var d int64
	for i, fd := range w.fds {
		var st unix.Stat_t
		if fstat(fd, &st) == nil && st.Nlink > 0 {
			d += st.Size - w.sizes[i]
		}
	}
	if d != 0 {
		w.u.quota.q.Adjust(d, 0)
	}
}

// sizeLock returns the lock of the size of the inode open at fd.
func (u *Union) sizeLock(st *unix.Stat_t) *sync.RWMutex {
	return &u.quota.sizeLocks[st.Ino%uint64(len(u.quota.sizeLocks))]
}

// resize makes a change of the size of the upper file open at fd (any
// descriptor of it, O_PATH included), whose size afterwards will be
// newSize(size before), charging the growth before and settling with what
// the host reports after: change runs only if the growth fits (EDQUOT
// otherwise). A file without names (unlinked while open) is not counted.
func (u *Union) resize(fd int, newSize func(old int64) int64, change func() error) error {
	if u.quota.q == nil {
		return change()
	}
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil {
		return err
	}
	l := u.sizeLock(&st)
	l.Lock()
	defer l.Unlock()
	return u.resizeLocked(fd, newSize, change)
}

// resizeLocked is resize with the inode's size lock held.
func (u *Union) resizeLocked(fd int, newSize func(old int64) int64, change func() error) error {
	var before unix.Stat_t
	if err := fstat(fd, &before); err != nil {
		return err
	}
	if before.Nlink == 0 {
		return change()
	}
	growth := max(0, newSize(before.Size)-before.Size)
	r, err := u.reserve(usage{growth, 0}, usage{})
	if err != nil {
		return err
	}
	err = change()
	// Settled with the size the host reports, whether or not change
	// failed (a short write grew the file by less), in one step so
	// that no other charge sees the reservation given back meanwhile.
	var after unix.Stat_t
	if fstat(fd, &after) != nil || after.Nlink == 0 {
		r.done(false)
		return err
	}
	r.added(after.Size - before.Size)
	r.done(true)
	return err
}

// writeCounted writes p at off (at the end with appendMode) to the upper
// file open at fd, charging its growth. Writes inside the file's size
// share the inode's size lock; one that grows the file holds it alone.
func (u *Union) writeCounted(fd int, p []byte, off int64, appendMode bool) (int, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	l := u.sizeLock(&st)
	l.RLock()
	if err := unix.Fstat(fd, &st); err != nil {
		l.RUnlock()
		return 0, err
	}
	if !appendMode && off+int64(len(p)) <= st.Size {
		defer l.RUnlock()
		return pwriteAll(fd, p, off)
	}
	l.RUnlock()
	l.Lock()
	defer l.Unlock()
	var n int
	err := u.resizeLocked(fd, func(old int64) int64 {
		if appendMode {
			return old + int64(len(p))
		}
		return max(old, off+int64(len(p)))
	}, func() error {
		var err error
		n, err = pwriteAll(fd, p, off)
		return err
	})
	return n, err
}

// truncateCounted truncates the upper file open at fd (O_PATH) to size,
// charging its growth.
func (u *Union) truncateCounted(fd int, size int64) error {
	return u.resize(fd, func(int64) int64 { return size }, func() error {
		return unix.Truncate(procPath(fd), size)
	})
}

// createCounted runs make, which makes name in the upper directory
// slot.dirfd (replacing the whiteout there if slot says so), charging
// add (one inode and a size estimate for a new object; nothing for a
// link) before and the host's figures after. Call with nsMu held.
func (u *Union) createCounted(slot upperSlot, name string, add usage, make func() error) error {
	if u.quota.q == nil {
		return make()
	}
	var free usage
	var st unix.Stat_t
	if slot.whiteout && lstatAt(slot.dirfd, name, &st) == nil {
		free = u.removedUsage(slot.dirfd, name, &st)
	}
	r, err := u.reserve(add, free)
	if err != nil {
		return err
	}
	w := u.watchSizes(slot.dirfd)
	err = make()
	if err == nil && add.inodes > 0 {
		r.addedDir(slot.dirfd, name)
	}
	w.settle()
	r.done(err == nil)
	return err
}

// removeCounted removes name (a non-directory unless isDir) from the
// upper directory dirfd and releases what that frees. It takes nsMu.
func (u *Union) removeCounted(dirfd int, name string, isDir bool) {
	u.nsMu.Lock()
	defer u.nsMu.Unlock()
	var st unix.Stat_t
	if u.quota.q == nil || lstatAt(dirfd, name, &st) != nil {
		removeAt(dirfd, name, isDir)
		return
	}
	free := u.removedUsage(dirfd, name, &st)
	w := u.watchSizes(dirfd)
	removeAt(dirfd, name, isDir)
	w.settle()
	if lstatAt(dirfd, name, &st) == unix.ENOENT {
		u.quota.q.Release(free.bytes, free.inodes)
	}
}

// reserveCopy reserves a copy-up of the lower object src: one inode and
// its size (none for a file whose data is not copied, copyEmpty).
func (u *Union) reserveCopy(src lowerObj, mode copyMode) (*reservation, error) {
	if u.quota.q == nil {
		return nil, nil
	}
	var st unix.Stat_t
	if err := fstat(src.fd, &st); err != nil {
		return nil, err
	}
	typ := st.Mode & unix.S_IFMT
	size := max(0, st.Size)
	if typ == unix.S_IFREG && mode == copyEmpty || typ != unix.S_IFREG && typ != unix.S_IFLNK {
		size = 0
	}
	return u.reserve(u.newObjectUsage(typ, size), usage{})
}

// placedCounted runs place, which renames a finished copy into the upper
// directory pfd as name, and settles the copy-up's reservation r with
// what the host shows then. Call with nsMu held.
func (u *Union) placedCounted(r *reservation, pfd int, name string, place func() error) error {
	w := u.watchSizes(pfd)
	err := place()
	if err == nil {
		r.addedDir(pfd, name)
	}
	w.settle()
	r.done(err == nil)
	return err
}

// replaceCounted runs change, which removes the upper object name in
// dirfd if there is one (unlink, rmdir, a rename's target) and, if
// whiteout, leaves one new whiteout (there, or where a renamed object
// was): it charges the whiteout's inode before and releases the removed
// object after. watch are the upper directories change alters. Call with
// nsMu held.
func (u *Union) replaceCounted(dirfd int, name string, whiteout bool, watch []int, change func() error) error {
	if u.quota.q == nil {
		return change()
	}
	var free, add usage
	var st unix.Stat_t
	if lstatAt(dirfd, name, &st) == nil {
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			// What its removal frees is its size now: no write may grow
			// it between this look and the removal (the writer would
			// charge a growth that the removal does not release).
			l := u.sizeLock(&st)
			l.Lock()
			defer l.Unlock()
			if lstatAt(dirfd, name, &st) == nil {
				free = u.removedUsage(dirfd, name, &st)
			}
		} else {
			free = u.removedUsage(dirfd, name, &st)
		}
	}
	if whiteout {
		add.inodes = 1
	}
	r, err := u.reserve(add, free)
	if err != nil {
		return err
	}
	w := u.watchSizes(watch...)
	err = change()
	w.settle()
	r.done(err == nil)
	return err
}
