package wire

// Response bodies that more than one side encodes or decodes: the server
// writes them, test/p9wire reads them.

// Attr appends an Rgetattr body.
func (e *Encoder) Attr(a *Attr) *Encoder {
	return e.U64(a.Valid).QID(a.QID).U32(a.Mode).U32(a.UID).U32(a.GID).
		U64(a.Nlink).U64(a.Rdev).U64(a.Size).U64(a.Blksize).U64(a.Blocks).
		U64(a.AtimeSec).U64(a.AtimeNsec).U64(a.MtimeSec).U64(a.MtimeNsec).
		U64(a.CtimeSec).U64(a.CtimeNsec).U64(a.BtimeSec).U64(a.BtimeNsec).
		U64(a.Gen).U64(a.DataVersion)
}

// Attr reads an Rgetattr body.
func (d *Decoder) Attr() Attr {
	return Attr{Valid: d.U64(), QID: d.QID(), Mode: d.U32(), UID: d.U32(), GID: d.U32(),
		Nlink: d.U64(), Rdev: d.U64(), Size: d.U64(), Blksize: d.U64(), Blocks: d.U64(),
		AtimeSec: d.U64(), AtimeNsec: d.U64(), MtimeSec: d.U64(), MtimeNsec: d.U64(),
		CtimeSec: d.U64(), CtimeNsec: d.U64(), BtimeSec: d.U64(), BtimeNsec: d.U64(),
		Gen: d.U64(), DataVersion: d.U64()}
}

// StatFS appends an Rstatfs body.
func (e *Encoder) StatFS(s *StatFS) *Encoder {
	return e.U32(s.Type).U32(s.Bsize).U64(s.Blocks).U64(s.Bfree).U64(s.Bavail).
		U64(s.Files).U64(s.Ffree).U64(s.Fsid).U32(s.Namelen)
}

// StatFS reads an Rstatfs body.
func (d *Decoder) StatFS() StatFS {
	return StatFS{Type: d.U32(), Bsize: d.U32(), Blocks: d.U64(), Bfree: d.U64(), Bavail: d.U64(),
		Files: d.U64(), Ffree: d.U64(), Fsid: d.U64(), Namelen: d.U32()}
}

// Getlock appends an Rgetlock body (a Lock without Flags).
func (e *Encoder) Getlock(l *Lock) *Encoder {
	return e.U8(l.Type).U64(l.Start).U64(l.Length).U32(l.ProcID).Str(l.ClientID)
}

// Getlock reads an Rgetlock body.
func (d *Decoder) Getlock() Lock {
	return Lock{Type: d.U8(), Start: d.U64(), Length: d.U64(), ProcID: d.U32(), ClientID: d.Str()}
}

// Dirent appends one Rreaddir entry.
func (e *Encoder) Dirent(de *Dirent) *Encoder {
	return e.QID(de.QID).U64(de.Offset).U8(de.Type).Str(de.Name)
}

// Dirent reads one Rreaddir entry.
func (d *Decoder) Dirent() Dirent {
	return Dirent{QID: d.QID(), Offset: d.U64(), Type: d.U8(), Name: d.Str()}
}
