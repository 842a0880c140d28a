package p9srv

import (
	"github.com/hugelgupf/p9/p9"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// SetAttr implements p9.File.SetAttr.
//
// The mode comes from the wire tap's request, because the library masks it
// with 01777 and would drop setuid and setgid. Times follow utimensat: a
// time with its "set" bit is given; without it, "now" (UTIME_NOW); a time
// not named is left alone (UTIME_OMIT). The ctime bit needs no action: any
// change updates ctime on the host. Squashing replaces the owner a client
// asks for.
func (f *file) SetAttr(valid p9.SetAttrMask, attr p9.SetAttr) error {
	var sa union.SetAttr
	if valid.Permissions {
		sa.SetMode, sa.Mode = true, f.srv.fullMode(msgTsetattr, attr.Permissions)
	}
	if valid.UID {
		sa.SetUID, sa.UID = true, f.srv.squashUID(uint32(attr.UID))
	}
	if valid.GID {
		sa.SetGID, sa.GID = true, f.srv.squashGID(uint32(attr.GID))
	}
	if valid.Size {
		sa.SetSize, sa.Size = true, attr.Size
	}
	sa.Atime, sa.AtimeAt = timeSet(valid.ATime, valid.ATimeNotSystemTime, attr.ATimeSeconds, attr.ATimeNanoSeconds)
	sa.Mtime, sa.MtimeAt = timeSet(valid.MTime, valid.MTimeNotSystemTime, attr.MTimeSeconds, attr.MTimeNanoSeconds)
	if !sa.SetMode && !sa.SetUID && !sa.SetGID && !sa.SetSize && sa.Atime == union.TimeOmit && sa.Mtime == union.TimeOmit {
		return nil
	}
	return errno(f.node.SetAttr(sa))
}

func timeSet(named, given bool, sec, nsec uint64) (union.TimeSet, unix.Timespec) {
	switch {
	case !named:
		return union.TimeOmit, unix.Timespec{}
	case !given:
		return union.TimeNow, unix.Timespec{}
	default:
		return union.TimeGiven, unix.Timespec{Sec: int64(sec), Nsec: int64(nsec)}
	}
}
