package p9wire

import (
	"fmt"

	"github.com/union9p/union9p/p9srv/wire"
)

// The protocol's records, as package wire defines them.
type (
	QID     = wire.QID
	Attr    = wire.Attr
	SetAttr = wire.SetAttr
	Dirent  = wire.Dirent
	StatFS  = wire.StatFS
	Lock    = wire.Lock
)

// Getattr request masks.
const (
	GetattrBasic = wire.GetattrBasic
	GetattrAll   = wire.GetattrAll
)

// Setattr valid bits (P9_ATTR_*).
const (
	SetattrMode     = wire.SetattrMode
	SetattrUID      = wire.SetattrUID
	SetattrGID      = wire.SetattrGID
	SetattrSize     = wire.SetattrSize
	SetattrAtime    = wire.SetattrAtime
	SetattrMtime    = wire.SetattrMtime
	SetattrCtime    = wire.SetattrCtime
	SetattrAtimeSet = wire.SetattrAtimeSet
	SetattrMtimeSet = wire.SetattrMtimeSet
)

// Lock types and flags of Tlock/Tgetlock, and Rlock statuses.
const (
	LockRead      = wire.LockRead
	LockWrite     = wire.LockWrite
	LockUnlock    = wire.LockUnlock
	LockFlagBlock = wire.LockFlagBlock
	LockSuccess   = wire.LockSuccess
	LockBlocked   = wire.LockBlocked
	LockError     = wire.LockError
	LockGrace     = wire.LockGrace
)

// Open flags as the kernel sends them (P9_DOTL_*).
const (
	ORdonly    = wire.ORdonly
	OWronly    = wire.OWronly
	ORdwr      = wire.ORdwr
	OCreate    = wire.OCreate
	OExcl      = wire.OExcl
	OTrunc     = wire.OTrunc
	OAppend    = wire.OAppend
	ONonblock  = wire.ONonblock
	ODsync     = wire.ODsync
	ODirect    = wire.ODirect
	OLargefile = wire.OLargefile
	ODirectory = wire.ODirectory
	ONofollow  = wire.ONofollow
	ONoatime   = wire.ONoatime
	OCloexec   = wire.OCloexec
	OSync      = wire.OSync
)

// AtRemovedir is the Tunlinkat flag for directories.
const AtRemovedir = wire.AtRemovedir

// Attach sends Tattach without an auth fid.
func (c *Client) Attach(fid uint32, uname, aname string, nuname uint32) (QID, error) {
	d, err := c.RPC(Tattach, new(Encoder).U32(fid).U32(NoFid).Str(uname).Str(aname).U32(nuname).Bytes())
	if err != nil {
		return QID{}, err
	}
	q := d.QID()
	return q, d.Err()
}

// Walk sends Twalk; it fails unless every name was walked, as the kernel
// treats a partial walk.
func (c *Client) Walk(fid, newfid uint32, names ...string) ([]QID, error) {
	e := new(Encoder).U32(fid).U32(newfid).U16(uint16(len(names)))
	for _, n := range names {
		e.Str(n)
	}
	d, err := c.RPC(Twalk, e.Bytes())
	if err != nil {
		return nil, err
	}
	qids := make([]QID, d.U16())
	for i := range qids {
		qids[i] = d.QID()
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	if len(qids) != len(names) {
		return qids, fmt.Errorf("p9wire: walk of %d names returned %d qids", len(names), len(qids))
	}
	return qids, nil
}

// Getattr sends Tgetattr.
func (c *Client) Getattr(fid uint32, mask uint64) (Attr, error) {
	d, err := c.RPC(Tgetattr, new(Encoder).U32(fid).U64(mask).Bytes())
	if err != nil {
		return Attr{}, err
	}
	a := d.Attr()
	return a, d.Err()
}

// Setattr sends Tsetattr.
func (c *Client) Setattr(fid uint32, s SetAttr) error {
	_, err := c.RPC(Tsetattr, new(Encoder).U32(fid).U32(s.Valid).U32(s.Mode).U32(s.UID).U32(s.GID).
		U64(s.Size).U64(s.AtimeSec).U64(s.AtimeNsec).U64(s.MtimeSec).U64(s.MtimeNsec).Bytes())
	return err
}

// Lopen sends Tlopen and returns the qid and iounit.
func (c *Client) Lopen(fid, flags uint32) (QID, uint32, error) {
	d, err := c.RPC(Tlopen, new(Encoder).U32(fid).U32(flags).Bytes())
	if err != nil {
		return QID{}, 0, err
	}
	q, iounit := d.QID(), d.U32()
	return q, iounit, d.Err()
}

// Lcreate sends Tlcreate; on success fid is the new, open file.
func (c *Client) Lcreate(fid uint32, name string, flags, mode, gid uint32) (QID, uint32, error) {
	d, err := c.RPC(Tlcreate, new(Encoder).U32(fid).Str(name).U32(flags).U32(mode).U32(gid).Bytes())
	if err != nil {
		return QID{}, 0, err
	}
	q, iounit := d.QID(), d.U32()
	return q, iounit, d.Err()
}

// Read sends one Tread.
func (c *Client) Read(fid uint32, offset uint64, count uint32) ([]byte, error) {
	d, err := c.RPC(Tread, new(Encoder).U32(fid).U64(offset).U32(count).Bytes())
	if err != nil {
		return nil, err
	}
	n := d.U32()
	rest := d.Rest()
	if d.Err() != nil || int(n) > len(rest) {
		return nil, ErrShortBody
	}
	return rest[:n], nil
}

// ReadInto sends one Tread for len(dst) bytes and reads the data of its
// Rread straight into dst, as the kernel's zero-copy read does; it returns
// the count read. dst must not be touched until ReadInto returns.
func (c *Client) ReadInto(fid uint32, offset uint64, dst []byte) (int, error) {
	d, err := c.rpc(Tread, new(Encoder).U32(fid).U64(offset).U32(uint32(len(dst))).Bytes(), nil, dst)
	if err != nil {
		return 0, err
	}
	n := d.U32()
	return int(n), d.Err()
}

// Write sends one Twrite and returns the count written. The data is sent
// beside the header, not copied into the frame.
func (c *Client) Write(fid uint32, offset uint64, data []byte) (uint32, error) {
	d, err := c.rpc(Twrite, new(Encoder).U32(fid).U64(offset).U32(uint32(len(data))).Bytes(), data, nil)
	if err != nil {
		return 0, err
	}
	n := d.U32()
	return n, d.Err()
}

// Readdir sends one Treaddir with the given byte count.
func (c *Client) Readdir(fid uint32, offset uint64, count uint32) ([]Dirent, error) {
	d, err := c.RPC(Treaddir, new(Encoder).U32(fid).U64(offset).U32(count).Bytes())
	if err != nil {
		return nil, err
	}
	n := d.U32()
	rest := d.Rest()
	if d.Err() != nil || int(n) > len(rest) {
		return nil, ErrShortBody
	}
	var out []Dirent
	ed := NewDecoder(rest[:n])
	for len(ed.Rest()) > 0 {
		e := ed.Dirent()
		if ed.Err() != nil {
			return nil, ed.Err()
		}
		out = append(out, e)
	}
	return out, nil
}

// ReaddirCount sends one Treaddir and returns the number of entries in the
// answer and the offset of the last one, checking each entry's encoding
// but keeping no names: what getdents(2) costs a kernel client that copies
// names into the caller's buffer, not a Go string per entry.
func (c *Client) ReaddirCount(fid uint32, offset uint64, count uint32) (n int, last uint64, err error) {
	d, err := c.RPC(Treaddir, new(Encoder).U32(fid).U64(offset).U32(count).Bytes())
	if err != nil {
		return 0, 0, err
	}
	size := d.U32()
	rest := d.Rest()
	if d.Err() != nil || int(size) > len(rest) {
		return 0, 0, ErrShortBody
	}
	ed := NewDecoder(rest[:size])
	for len(ed.Rest()) > 0 {
		ed.QID()
		last = ed.U64()
		ed.U8()
		ed.Bytes(int(ed.U16()))
		if ed.Err() != nil {
			return 0, 0, ed.Err()
		}
		n++
	}
	return n, last, nil
}

// Mkdir sends Tmkdir.
func (c *Client) Mkdir(dfid uint32, name string, mode, gid uint32) (QID, error) {
	return c.qidRPC(Tmkdir, new(Encoder).U32(dfid).Str(name).U32(mode).U32(gid))
}

// Symlink sends Tsymlink creating name -> target.
func (c *Client) Symlink(dfid uint32, name, target string, gid uint32) (QID, error) {
	return c.qidRPC(Tsymlink, new(Encoder).U32(dfid).Str(name).Str(target).U32(gid))
}

// Mknod sends Tmknod; mode includes the file type bits.
func (c *Client) Mknod(dfid uint32, name string, mode, major, minor, gid uint32) (QID, error) {
	return c.qidRPC(Tmknod, new(Encoder).U32(dfid).Str(name).U32(mode).U32(major).U32(minor).U32(gid))
}

func (c *Client) qidRPC(typ uint8, e *Encoder) (QID, error) {
	d, err := c.RPC(typ, e.Bytes())
	if err != nil {
		return QID{}, err
	}
	q := d.QID()
	return q, d.Err()
}

// Link sends Tlink: a new name in dfid for the file of fid.
func (c *Client) Link(dfid, fid uint32, name string) error {
	_, err := c.RPC(Tlink, new(Encoder).U32(dfid).U32(fid).Str(name).Bytes())
	return err
}

// Renameat sends Trenameat.
func (c *Client) Renameat(oldDir uint32, oldName string, newDir uint32, newName string) error {
	_, err := c.RPC(Trenameat, new(Encoder).U32(oldDir).Str(oldName).U32(newDir).Str(newName).Bytes())
	return err
}

// Unlinkat sends Tunlinkat (flags: 0 or AtRemovedir).
func (c *Client) Unlinkat(dfid uint32, name string, flags uint32) error {
	_, err := c.RPC(Tunlinkat, new(Encoder).U32(dfid).Str(name).U32(flags).Bytes())
	return err
}

// Readlink sends Treadlink.
func (c *Client) Readlink(fid uint32) (string, error) {
	d, err := c.RPC(Treadlink, new(Encoder).U32(fid).Bytes())
	if err != nil {
		return "", err
	}
	s := d.Str()
	return s, d.Err()
}

// Xattrwalk sends Txattrwalk (an empty name lists the names) and returns
// the size of the value; newfid then reads it.
func (c *Client) Xattrwalk(fid, newfid uint32, name string) (uint64, error) {
	d, err := c.RPC(Txattrwalk, new(Encoder).U32(fid).U32(newfid).Str(name).Bytes())
	if err != nil {
		return 0, err
	}
	n := d.U64()
	return n, d.Err()
}

// Xattrcreate sends Txattrcreate; the value is then written to fid and set
// when fid is clunked.
func (c *Client) Xattrcreate(fid uint32, name string, size uint64, flags uint32) error {
	_, err := c.RPC(Txattrcreate, new(Encoder).U32(fid).Str(name).U64(size).U32(flags).Bytes())
	return err
}

// GetXattr reads an attribute the way the kernel does: Txattrwalk to
// tmpfid, Tread of the value, Tclunk.
func (c *Client) GetXattr(fid, tmpfid uint32, name string) ([]byte, error) {
	size, err := c.Xattrwalk(fid, tmpfid, name)
	if err != nil {
		return nil, err
	}
	defer c.Clunk(tmpfid)
	var out []byte
	for uint64(len(out)) < size {
		p, err := c.Read(tmpfid, uint64(len(out)), uint32(size)-uint32(len(out)))
		if err != nil {
			return nil, err
		}
		if len(p) == 0 {
			break
		}
		out = append(out, p...)
	}
	return out, nil
}

// SetXattr sets an attribute the way the kernel does: clone fid to tmpfid,
// Txattrcreate, Twrite of the value, Tclunk (whose answer is the result).
func (c *Client) SetXattr(fid, tmpfid uint32, name string, value []byte, flags uint32) error {
	if _, err := c.Walk(fid, tmpfid); err != nil {
		return err
	}
	if err := c.Xattrcreate(tmpfid, name, uint64(len(value)), flags); err != nil {
		c.Clunk(tmpfid)
		return err
	}
	if len(value) > 0 {
		if _, err := c.Write(tmpfid, 0, value); err != nil {
			c.Clunk(tmpfid)
			return err
		}
	}
	return c.Clunk(tmpfid)
}

// Fsync sends Tfsync.
func (c *Client) Fsync(fid uint32, datasync bool) error {
	var ds uint32
	if datasync {
		ds = 1
	}
	_, err := c.RPC(Tfsync, new(Encoder).U32(fid).U32(ds).Bytes())
	return err
}

// Statfs sends Tstatfs.
func (c *Client) Statfs(fid uint32) (StatFS, error) {
	d, err := c.RPC(Tstatfs, new(Encoder).U32(fid).Bytes())
	if err != nil {
		return StatFS{}, err
	}
	s := d.StatFS()
	return s, d.Err()
}

// Lock sends Tlock and returns the status.
func (c *Client) Lock(fid uint32, l Lock) (uint8, error) {
	d, err := c.RPC(Tlock, new(Encoder).U32(fid).U8(l.Type).U32(l.Flags).U64(l.Start).U64(l.Length).
		U32(l.ProcID).Str(l.ClientID).Bytes())
	if err != nil {
		return 0, err
	}
	s := d.U8()
	return s, d.Err()
}

// Getlock sends Tgetlock. The answer's Type is LockUnlock when the lock
// could be placed, else it describes a conflicting lock.
func (c *Client) Getlock(fid uint32, l Lock) (Lock, error) {
	d, err := c.RPC(Tgetlock, new(Encoder).U32(fid).U8(l.Type).U64(l.Start).U64(l.Length).
		U32(l.ProcID).Str(l.ClientID).Bytes())
	if err != nil {
		return Lock{}, err
	}
	r := d.Getlock()
	return r, d.Err()
}

// Clunk sends Tclunk.
func (c *Client) Clunk(fid uint32) error {
	_, err := c.RPC(Tclunk, new(Encoder).U32(fid).Bytes())
	return err
}

// Remove sends Tremove.
func (c *Client) Remove(fid uint32) error {
	_, err := c.RPC(Tremove, new(Encoder).U32(fid).Bytes())
	return err
}

// Flush sends Tflush for oldtag and waits for Rflush.
func (c *Client) Flush(oldtag uint16) error {
	_, err := c.RPC(Tflush, new(Encoder).U16(oldtag).Bytes())
	return err
}
