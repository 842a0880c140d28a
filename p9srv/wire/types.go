package wire

// HeaderSize is the size of a frame header: size[4] type[1] tag[2].
const HeaderSize = 7

// NoTag is the tag of Tversion.
const NoTag uint16 = 0xFFFF

// NoFid is the "no fid" value (Tattach's afid).
const NoFid uint32 = 0xFFFFFFFF

// NoUID is the n_uname (and gid) value meaning "none given".
const NoUID uint32 = 0xFFFFFFFF

// Version is the only protocol version spoken: the one Linux asks for.
const Version = "9P2000.L"

// MaxWalkNames is the most names one Twalk may carry (P9_MAXWELEM).
const MaxWalkNames = 16

// Message types of 9P2000.L (T = request, R = response = T+1).
const (
	Tlerror      uint8 = 6
	Rlerror      uint8 = 7
	Tstatfs      uint8 = 8
	Rstatfs      uint8 = 9
	Tlopen       uint8 = 12
	Rlopen       uint8 = 13
	Tlcreate     uint8 = 14
	Rlcreate     uint8 = 15
	Tsymlink     uint8 = 16
	Rsymlink     uint8 = 17
	Tmknod       uint8 = 18
	Rmknod       uint8 = 19
	Trename      uint8 = 20
	Rrename      uint8 = 21
	Treadlink    uint8 = 22
	Rreadlink    uint8 = 23
	Tgetattr     uint8 = 24
	Rgetattr     uint8 = 25
	Tsetattr     uint8 = 26
	Rsetattr     uint8 = 27
	Txattrwalk   uint8 = 30
	Rxattrwalk   uint8 = 31
	Txattrcreate uint8 = 32
	Rxattrcreate uint8 = 33
	Treaddir     uint8 = 40
	Rreaddir     uint8 = 41
	Tfsync       uint8 = 50
	Rfsync       uint8 = 51
	Tlock        uint8 = 52
	Rlock        uint8 = 53
	Tgetlock     uint8 = 54
	Rgetlock     uint8 = 55
	Tlink        uint8 = 70
	Rlink        uint8 = 71
	Tmkdir       uint8 = 72
	Rmkdir       uint8 = 73
	Trenameat    uint8 = 74
	Rrenameat    uint8 = 75
	Tunlinkat    uint8 = 76
	Runlinkat    uint8 = 77
	Tversion     uint8 = 100
	Rversion     uint8 = 101
	Tauth        uint8 = 102
	Rauth        uint8 = 103
	Tattach      uint8 = 104
	Rattach      uint8 = 105
	Tflush       uint8 = 108
	Rflush       uint8 = 109
	Twalk        uint8 = 110
	Rwalk        uint8 = 111
	Tread        uint8 = 116
	Rread        uint8 = 117
	Twrite       uint8 = 118
	Rwrite       uint8 = 119
	Tclunk       uint8 = 120
	Rclunk       uint8 = 121
	Tremove      uint8 = 122
	Rremove      uint8 = 123
)

// MessageName names a message type for logs ("Twalk"), or "type N".
func MessageName(typ uint8) string {
	if int(typ) < len(messageNames) && messageNames[typ] != "" {
		return messageNames[typ]
	}
	return "type " + itoa(int(typ))
}

var messageNames = [256]string{
	Tlerror: "Tlerror", Rlerror: "Rlerror", Tstatfs: "Tstatfs", Rstatfs: "Rstatfs",
	Tlopen: "Tlopen", Rlopen: "Rlopen", Tlcreate: "Tlcreate", Rlcreate: "Rlcreate",
	Tsymlink: "Tsymlink", Rsymlink: "Rsymlink", Tmknod: "Tmknod", Rmknod: "Rmknod",
	Trename: "Trename", Rrename: "Rrename", Treadlink: "Treadlink", Rreadlink: "Rreadlink",
	Tgetattr: "Tgetattr", Rgetattr: "Rgetattr", Tsetattr: "Tsetattr", Rsetattr: "Rsetattr",
	Txattrwalk: "Txattrwalk", Rxattrwalk: "Rxattrwalk", Txattrcreate: "Txattrcreate",
	Rxattrcreate: "Rxattrcreate", Treaddir: "Treaddir", Rreaddir: "Rreaddir",
	Tfsync: "Tfsync", Rfsync: "Rfsync", Tlock: "Tlock", Rlock: "Rlock",
	Tgetlock: "Tgetlock", Rgetlock: "Rgetlock", Tlink: "Tlink", Rlink: "Rlink",
	Tmkdir: "Tmkdir", Rmkdir: "Rmkdir", Trenameat: "Trenameat", Rrenameat: "Rrenameat",
	Tunlinkat: "Tunlinkat", Runlinkat: "Runlinkat", Tversion: "Tversion", Rversion: "Rversion",
	Tauth: "Tauth", Rauth: "Rauth", Tattach: "Tattach", Rattach: "Rattach",
	Tflush: "Tflush", Rflush: "Rflush", Twalk: "Twalk", Rwalk: "Rwalk",
	Tread: "Tread", Rread: "Rread", Twrite: "Twrite", Rwrite: "Rwrite",
	Tclunk: "Tclunk", Rclunk: "Rclunk", Tremove: "Tremove", Rremove: "Rremove",
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	var b [8]byte
	i := len(b)
	for ; v > 0; v /= 10 {
		i--
		b[i] = byte('0' + v%10)
	}
	return string(b[i:])
}

// QID identifies a file on the server.
type QID struct {
	Type    uint8
	Version uint32
	Path    uint64
}

// QID types.
const (
	QIDTypeDir     uint8 = 0x80
	QIDTypeSymlink uint8 = 0x02
	QIDTypeFile    uint8 = 0x00
)

// QIDSize is the encoded size of a QID.
const QIDSize = 13

// Getattr request masks.
const (
	GetattrBasic uint64 = 0x000007ff // mode..blocks, as the kernel asks
	GetattrAll   uint64 = 0x00003fff
)

// Attr is an Rgetattr body.
type Attr struct {
	Valid               uint64
	QID                 QID
	Mode, UID, GID      uint32
	Nlink, Rdev, Size   uint64
	Blksize, Blocks     uint64
	AtimeSec, AtimeNsec uint64
	MtimeSec, MtimeNsec uint64
	CtimeSec, CtimeNsec uint64
	BtimeSec, BtimeNsec uint64
	Gen, DataVersion    uint64
}

// Setattr valid bits (P9_ATTR_*).
const (
	SetattrMode     uint32 = 0x001
	SetattrUID      uint32 = 0x002
	SetattrGID      uint32 = 0x004
	SetattrSize     uint32 = 0x008
	SetattrAtime    uint32 = 0x010
	SetattrMtime    uint32 = 0x020
	SetattrCtime    uint32 = 0x040
	SetattrAtimeSet uint32 = 0x080 // time given; without it the server uses "now"
	SetattrMtimeSet uint32 = 0x100
)

// SetAttr is a Tsetattr body (without the fid).
type SetAttr struct {
	Valid               uint32
	Mode, UID, GID      uint32
	Size                uint64
	AtimeSec, AtimeNsec uint64
	MtimeSec, MtimeNsec uint64
}

// Dirent is one Rreaddir entry. Type is the d_type (DT_*) value.
type Dirent struct {
	QID    QID
	Offset uint64
	Type   uint8
	Name   string
}

// DirentFixedSize is the encoded size of a Dirent without its name:
// qid[13] offset[8] type[1] name-length[2].
const DirentFixedSize = 24

// StatFS is an Rstatfs body.
type StatFS struct {
	Type, Bsize           uint32
	Blocks, Bfree, Bavail uint64
	Files, Ffree, Fsid    uint64
	Namelen               uint32
}

// Lock types and flags of Tlock/Tgetlock, and Rlock statuses.
const (
	LockRead   uint8 = 0
	LockWrite  uint8 = 1
	LockUnlock uint8 = 2

	LockFlagBlock uint32 = 1

	LockSuccess uint8 = 0
	LockBlocked uint8 = 1
	LockError   uint8 = 2
	LockGrace   uint8 = 3
)

// Lock is the body of Tlock and (without Flags) Tgetlock/Rgetlock.
type Lock struct {
	Type          uint8
	Flags         uint32
	Start, Length uint64
	ProcID        uint32
	ClientID      string
}

// Open flags as the kernel sends them (P9_DOTL_*; the x86 O_* values).
const (
	ORdonly    uint32 = 00000000
	OWronly    uint32 = 00000001
	ORdwr      uint32 = 00000002
	OAccMode   uint32 = 00000003
	OCreate    uint32 = 00000100
	OExcl      uint32 = 00000200
	OTrunc     uint32 = 00001000
	OAppend    uint32 = 00002000
	ONonblock  uint32 = 00004000
	ODsync     uint32 = 00010000
	ODirect    uint32 = 00040000
	OLargefile uint32 = 00100000
	ODirectory uint32 = 00200000
	ONofollow  uint32 = 00400000
	ONoatime   uint32 = 01000000
	OCloexec   uint32 = 02000000
	OSync      uint32 = 04000000
)

// AtRemovedir is the Tunlinkat flag for directories.
const AtRemovedir uint32 = 0x200
