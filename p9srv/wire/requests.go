package wire

import "errors"

// Request is one decoded T-message: a pointer to one of the T* structs
// below. Strings are copies; Twrite's Data aliases the frame it came from.
type Request interface{ requestType() uint8 }

// The typed requests, one per T-message, with every field the protocol
// carries.
type (
	TversionReq struct {
		Msize   uint32
		Version string
	}
	TauthReq struct {
		Afid         uint32
		Uname, Aname string
		NUname       uint32
	}
	TattachReq struct {
		Fid, Afid    uint32
		Uname, Aname string
		NUname       uint32
	}
	TflushReq struct{ OldTag uint16 }
	TwalkReq  struct {
		Fid, NewFid uint32
		Names       []string
	}
	TlopenReq   struct{ Fid, Flags uint32 }
	TlcreateReq struct {
		Fid              uint32
		Name             string
		Flags, Mode, GID uint32
	}
	TsymlinkReq struct {
		Fid          uint32
		Name, Target string
		GID          uint32
	}
	TmknodReq struct {
		Dfid                    uint32
		Name                    string
		Mode, Major, Minor, GID uint32
	}
	TrenameReq struct {
		Fid, Dfid uint32
		Name      string
	}
	TreadlinkReq struct{ Fid uint32 }
	TgetattrReq  struct {
		Fid  uint32
		Mask uint64
	}
	TsetattrReq struct {
		Fid uint32
		SetAttr
	}
	TxattrwalkReq struct {
		Fid, NewFid uint32
		Name        string
	}
	TxattrcreateReq struct {
		Fid   uint32
		Name  string
		Size  uint64
		Flags uint32
	}
	TreaddirReq struct {
		Fid    uint32
		Offset uint64
		Count  uint32
	}
	TfsyncReq struct{ Fid, Datasync uint32 }
	TlockReq  struct {
		Fid uint32
		Lock
	}
	TgetlockReq struct {
		Fid uint32
		Lock
	}
	TlinkReq struct {
		Dfid, Fid uint32
		Name      string
	}
	TmkdirReq struct {
		Dfid      uint32
		Name      string
		Mode, GID uint32
	}
	TrenameatReq struct {
		OldDir  uint32
		OldName string
		NewDir  uint32
		NewName string
	}
	TunlinkatReq struct {
		Dfid  uint32
		Name  string
		Flags uint32
	}
	TreadReq struct {
		Fid    uint32
		Offset uint64
		Count  uint32
	}
	TwriteReq struct {
		Fid    uint32
		Offset uint64
		Data   []byte
	}
	TclunkReq  struct{ Fid uint32 }
	TremoveReq struct{ Fid uint32 }
	TstatfsReq struct{ Fid uint32 }
)

func (*TversionReq) requestType() uint8     { return Tversion }
func (*TauthReq) requestType() uint8        { return Tauth }
func (*TattachReq) requestType() uint8      { return Tattach }
func (*TflushReq) requestType() uint8       { return Tflush }
func (*TwalkReq) requestType() uint8        { return Twalk }
func (*TlopenReq) requestType() uint8       { return Tlopen }
func (*TlcreateReq) requestType() uint8     { return Tlcreate }
func (*TsymlinkReq) requestType() uint8     { return Tsymlink }
func (*TmknodReq) requestType() uint8       { return Tmknod }
func (*TrenameReq) requestType() uint8      { return Trename }
func (*TreadlinkReq) requestType() uint8    { return Treadlink }
func (*TgetattrReq) requestType() uint8     { return Tgetattr }
func (*TsetattrReq) requestType() uint8     { return Tsetattr }
func (*TxattrwalkReq) requestType() uint8   { return Txattrwalk }
func (*TxattrcreateReq) requestType() uint8 { return Txattrcreate }
func (*TreaddirReq) requestType() uint8     { return Treaddir }
func (*TfsyncReq) requestType() uint8       { return Tfsync }
func (*TlockReq) requestType() uint8        { return Tlock }
func (*TgetlockReq) requestType() uint8     { return Tgetlock }
func (*TlinkReq) requestType() uint8        { return Tlink }
func (*TmkdirReq) requestType() uint8       { return Tmkdir }
func (*TrenameatReq) requestType() uint8    { return Trenameat }
func (*TunlinkatReq) requestType() uint8    { return Tunlinkat }
func (*TreadReq) requestType() uint8        { return Tread }
func (*TwriteReq) requestType() uint8       { return Twrite }
func (*TclunkReq) requestType() uint8       { return Tclunk }
func (*TremoveReq) requestType() uint8      { return Tremove }
func (*TstatfsReq) requestType() uint8      { return Tstatfs }

// TypeOf returns the message type of a decoded request.
func TypeOf(r Request) uint8 { return r.requestType() }

// Errors of DecodeRequest.
var (
	ErrUnknownType = errors.New("p9: unknown or unsupported message type")
	ErrBadField    = errors.New("p9: field out of range")
)

// DecodeRequest decodes the body of a T-message of type typ. It returns
// ErrShortBody when the body ends before the type's fields, ErrUnknownType
// for types that are not 9P2000.L requests, ErrBadField for counts out of
// range. Bytes after the last field are ignored.
func DecodeRequest(typ uint8, body []byte) (Request, error) {
	d := Decoder{b: body}
	var r Request
	switch typ {
	case Tversion:
		r = &TversionReq{Msize: d.U32(), Version: d.Str()}
	case Tauth:
		r = &TauthReq{Afid: d.U32(), Uname: d.Str(), Aname: d.Str(), NUname: d.U32()}
	case Tattach:
		r = &TattachReq{Fid: d.U32(), Afid: d.U32(), Uname: d.Str(), Aname: d.Str(), NUname: d.U32()}
	case Tflush:
		r = &TflushReq{OldTag: d.U16()}
	case Twalk:
		w := &TwalkReq{Fid: d.U32(), NewFid: d.U32()}
		n := int(d.U16())
		if n > MaxWalkNames {
			return nil, ErrBadField
		}
		if n > 0 && d.err == nil {
			w.Names = make([]string, n)
			for i := range w.Names {
				w.Names[i] = d.Str()
			}
		}
		r = w
	case Tlopen:
		r = &TlopenReq{Fid: d.U32(), Flags: d.U32()}
	case Tlcreate:
		r = &TlcreateReq{Fid: d.U32(), Name: d.Str(), Flags: d.U32(), Mode: d.U32(), GID: d.U32()}
	case Tsymlink:
		r = &TsymlinkReq{Fid: d.U32(), Name: d.Str(), Target: d.Str(), GID: d.U32()}
	case Tmknod:
		r = &TmknodReq{Dfid: d.U32(), Name: d.Str(), Mode: d.U32(), Major: d.U32(), Minor: d.U32(), GID: d.U32()}
	case Trename:
		r = &TrenameReq{Fid: d.U32(), Dfid: d.U32(), Name: d.Str()}
	case Treadlink:
		r = &TreadlinkReq{Fid: d.U32()}
	case Tgetattr:
		r = &TgetattrReq{Fid: d.U32(), Mask: d.U64()}
	case Tsetattr:
		r = &TsetattrReq{Fid: d.U32(), SetAttr: SetAttr{Valid: d.U32(), Mode: d.U32(), UID: d.U32(), GID: d.U32(),
			Size: d.U64(), AtimeSec: d.U64(), AtimeNsec: d.U64(), MtimeSec: d.U64(), MtimeNsec: d.U64()}}
	case Txattrwalk:
		r = &TxattrwalkReq{Fid: d.U32(), NewFid: d.U32(), Name: d.Str()}
	case Txattrcreate:
		r = &TxattrcreateReq{Fid: d.U32(), Name: d.Str(), Size: d.U64(), Flags: d.U32()}
	case Treaddir:
		r = &TreaddirReq{Fid: d.U32(), Offset: d.U64(), Count: d.U32()}
	case Tfsync:
		r = &TfsyncReq{Fid: d.U32(), Datasync: d.U32()}
	case Tlock:
		r = &TlockReq{Fid: d.U32(), Lock: Lock{Type: d.U8(), Flags: d.U32(), Start: d.U64(), Length: d.U64(),
			ProcID: d.U32(), ClientID: d.Str()}}
	case Tgetlock:
		r = &TgetlockReq{Fid: d.U32(), Lock: Lock{Type: d.U8(), Start: d.U64(), Length: d.U64(),
			ProcID: d.U32(), ClientID: d.Str()}}
	case Tlink:
		r = &TlinkReq{Dfid: d.U32(), Fid: d.U32(), Name: d.Str()}
	case Tmkdir:
		r = &TmkdirReq{Dfid: d.U32(), Name: d.Str(), Mode: d.U32(), GID: d.U32()}
	case Trenameat:
		r = &TrenameatReq{OldDir: d.U32(), OldName: d.Str(), NewDir: d.U32(), NewName: d.Str()}
	case Tunlinkat:
		r = &TunlinkatReq{Dfid: d.U32(), Name: d.Str(), Flags: d.U32()}
	case Tread:
		r = &TreadReq{Fid: d.U32(), Offset: d.U64(), Count: d.U32()}
	case Twrite:
		w := &TwriteReq{Fid: d.U32(), Offset: d.U64()}
		n := d.U32()
		if d.err == nil && uint64(n) > uint64(len(d.b)) {
			return nil, ErrShortBody
		}
		w.Data = d.take(int(n))
		r = w
	case Tclunk:
		r = &TclunkReq{Fid: d.U32()}
	case Tremove:
		r = &TremoveReq{Fid: d.U32()}
	case Tstatfs:
		r = &TstatfsReq{Fid: d.U32()}
	default:
		return nil, ErrUnknownType
	}
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}
