package union

import "golang.org/x/sys/unix"

// Attr is what a client sees of an object.
type Attr struct {
	ID      uint64 // stable id (see the package comment)
	Mode    uint32 // file type and permission bits, as st_mode (setuid etc. included)
	Nlink   uint64
	UID     uint32
	GID     uint32
	Rdev    uint64
	Size    uint64
	Blksize uint64
	Blocks  uint64 // 512-byte blocks
	Atime   unix.Timespec
	Mtime   unix.Timespec
	Ctime   unix.Timespec
}

// IsDir reports whether the attributes are a directory's.
func (a *Attr) IsDir() bool { return a.Mode&unix.S_IFMT == unix.S_IFDIR }

// TimeSet says how a SetAttr changes one timestamp.
type TimeSet int

const (
	TimeOmit  TimeSet = iota // leave as it is
	TimeNow                  // set to the current time
	TimeGiven                // set to the given value
)

// SetAttr is a change of attributes; only the fields named by its Set*
// flags are applied, in the order size, owner, mode, times (chown clears
// setuid on the host, so the mode is applied after it).
type SetAttr struct {
	SetMode bool
	Mode    uint32 // permission bits incl. setuid/setgid/sticky (07777)
	SetUID  bool
	UID     uint32
	SetGID  bool
	GID     uint32
	SetSize bool
	Size    uint64
	Atime   TimeSet
	AtimeAt unix.Timespec
	Mtime   TimeSet
	MtimeAt unix.Timespec
}

// Owner is who creates an object.
type Owner struct {
	UID, GID uint32
}

// Dirent is one entry of a merged directory listing.
type Dirent struct {
	Name   string
	ID     uint64 // stable id of the entry (as far as the listing can tell cheaply)
	Type   uint8  // DT_* value
	Cookie uint64 // pass to ReadDir to continue after this entry
}
