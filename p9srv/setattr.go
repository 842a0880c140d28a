package p9srv

import (
	"github.com/union9p/union9p/p9srv/wire"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// setattr answers Tsetattr.
//
// The mode keeps setuid, setgid and sticky bits as the client sent them.
// Times follow utimensat: a time with its "set" bit is given; without it,
// "now" (UTIME_NOW); a time not named is left alone (UTIME_OMIT). The
// ctime bit needs no action: any change updates ctime on the host.
// Squashing replaces the owner a client asks for.
func (c *conn) setattr(m *wire.TsetattrReq) error {
	f, err := c.nodeFid(m.Fid)
	if err != nil {
		return err
	}
	defer c.putFid(f)
	v := m.Valid
	var sa union.SetAttr
	if v&wire.SetattrMode != 0 {
		sa.SetMode, sa.Mode = true, m.Mode&0o7777
	}
	if v&wire.SetattrUID != 0 {
		sa.SetUID, sa.UID = true, m.UID
	}
	if v&wire.SetattrGID != 0 {
		sa.SetGID, sa.GID = true, m.GID
	}
	if v&wire.SetattrSize != 0 {
		sa.SetSize, sa.Size = true, m.Size
	}
	sa.Atime, sa.AtimeAt = timeSet(v&wire.SetattrAtime != 0, v&wire.SetattrAtimeSet != 0, m.AtimeSec, m.AtimeNsec)
	sa.Mtime, sa.MtimeAt = timeSet(v&wire.SetattrMtime != 0, v&wire.SetattrMtimeSet != 0, m.MtimeSec, m.MtimeNsec)
	c.exp.squash().SetAttr(&sa)
	if !sa.SetMode && !sa.SetUID && !sa.SetGID && !sa.SetSize && sa.Atime == union.TimeOmit && sa.Mtime == union.TimeOmit {
		return nil
	}
	return f.node.SetAttr(sa)
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
