package union

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"sync"

	"golang.org/x/sys/unix"
)

// Stable ids: the top 8 bits index the object's filesystem (st_dev) among
// those the union has met, the low 56 bits are its inode number. Inode
// numbers are unique within a filesystem, so ids are unique across layers
// even when several layers share one filesystem. An inode number that does
// not fit in 56 bits is hashed into them (a collision is possible but needs
// a filesystem with 64-bit inode numbers in use).
const (
	idInoBits = 56
	idInoMask = 1<<idInoBits - 1
	maxDevs   = 255
)

// originXattr, under the union's overlay namespace, holds the stable id of
// the lower object an upper object was copied from. The kernel's overlayfs
// hides and ignores unknown "overlay." names, so the upper stays mountable.
const originXattr = "union9p.id"

// devIndex numbers the filesystems the union meets. Index 0 is reserved so
// that no id is 0.
type devIndex struct {
	mu   sync.Mutex
	devs map[uint64]uint64
}

// init numbers the union's upper filesystem, then its lowers', in the
// index of its LowerSet (which may hold them already).
func (d *devIndex) init(u *Union) error {
	var fds []int
	if u.upper != nil {
		fds = append(fds, u.upper.fd)
	}
	for _, l := range u.lowers {
		fds = append(fds, l.fd)
	}
	for _, fd := range fds {
		var st unix.Stat_t
		if err := fstat(fd, &st); err != nil {
			return err
		}
		if _, err := d.index(st.Dev); err != nil {
			return err
		}
	}
	return nil
}

func (d *devIndex) index(dev uint64) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if i, ok := d.devs[dev]; ok {
		return i, nil
	}
	if len(d.devs) >= maxDevs {
		return 0, fmt.Errorf("union: more than %d filesystems inside the layers", maxDevs)
	}
	i := uint64(len(d.devs) + 1)
	d.devs[dev] = i
	return i, nil
}

// idOf computes the stable id of the host object st describes, ignoring
// any recorded origin.
func (u *Union) idOf(st *unix.Stat_t) uint64 { return u.idFor(st.Dev, st.Ino) }

// idFor computes the stable id of inode ino on device dev.
func (u *Union) idFor(dev, inode uint64) uint64 {
	i, err := u.devs.index(dev)
	if err != nil {
		// Out of indexes: fold the device into the hash instead.
		i = maxDevs
	}
	ino := inode
	if ino > idInoMask {
		h := fnv.New64a()
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:8], dev)
		binary.LittleEndian.PutUint64(b[8:], inode)
		h.Write(b[:])
		ino = h.Sum64() & idInoMask
	}
	return i<<idInoBits | ino
}

// readOrigin returns the origin id recorded on the upper object behind the
// O_PATH descriptor fd, or 0.
// Symlinks are read by name in their directory dirfd: a /proc/self/fd
// link to an O_PATH symlink descriptor is itself a symlink.
func (u *Union) readOrigin(fd int, isSymlink bool, dirfd int, name string) uint64 {
	if isSymlink {
		return u.readOriginAt(dirfd, name)
	}
	return u.decodeOrigin(func(b []byte) (int, error) { return unix.Getxattr(procPath(fd), string(u.ns)+originXattr, b) })
}

// readOriginAt returns the origin id recorded on the upper entry name of
// the directory dirfd, without following it, or 0.
func (u *Union) readOriginAt(dirfd int, name string) uint64 {
	return u.decodeOrigin(func(b []byte) (int, error) {
		return unix.Lgetxattr(procPathAt(dirfd, name), string(u.ns)+originXattr, b)
	})
}

func (u *Union) decodeOrigin(get func([]byte) (int, error)) uint64 {
	var b [8]byte
	if n, err := get(b[:]); err != nil || n != 8 {
		return 0
	}
	return binary.LittleEndian.Uint64(b[:])
}

// writeOrigin records on the upper object o the stable id of the object it
// was copied from. The one way an origin is written.
func (u *Union) writeOrigin(o hostObj, id uint64) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], id)
	return o.setxattr(string(u.ns)+originXattr, b[:])
}

// Layer roots and the work directory are "traps", as in overlayfs: a
// lookup that meets one inside a layer (a bind mount of a lower inside the
// upper, say, which the path checks in Open cannot see) answers ELOOP, so
// that writes through the union can never reach a lower layer or the work
// directory by another name.
type inodeKey struct{ dev, ino uint64 }

func (u *Union) setTraps() error {
	u.traps = make(map[inodeKey]bool)
	fds := []int{}
	if u.upper != nil {
		fds = append(fds, u.upper.fd, u.work)
	}
	for _, l := range u.lowers {
		fds = append(fds, l.fd)
	}
	for _, fd := range fds {
		var st unix.Stat_t
		if err := fstat(fd, &st); err != nil {
			return err
		}
		u.traps[inodeKey{st.Dev, st.Ino}] = true
	}
	return nil
}

// isTrap reports whether st is a layer root or the work directory.
func (u *Union) isTrap(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFDIR && u.traps[inodeKey{st.Dev, st.Ino}]
}
