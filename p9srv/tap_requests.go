package p9srv

import (
	"encoding/binary"
	"io"
	"os/user"
	"strconv"

	"github.com/hugelgupf/p9/linux"
)

// What the wire tap reads in requests: the fields the p9 library drops,
// the frames it answers itself, and the rewrites (see wiretap.go).

// inspect records what the library will drop from a request frame and
// returns the frame to hand to the library, or an errno to answer with.
// It runs in the goroutine that will handle the frame.
func (t *tap) inspect(typ uint8, tag uint16, frame []byte) ([]byte, linux.Errno) {
	d := newDecoder(frame[headerSize:])
	if typ == msgTversion {
		msize := d.u32()
		version := d.str()
		if d.err {
			return frame, 0
		}
		if msize > t.srv.maxMsize {
			msize = t.srv.maxMsize
		}
		if len(version) >= len("9P2000.L") && version[:len("9P2000.L")] == "9P2000.L" {
			version = "9P2000.L" // no extensions (see msgFirstExtension)
		}
		e := newEncoder(typ, tag)
		e.u32(msize)
		e.str(version)
		return e.frame(), 0
	}

	r := &request{tag: tag, typ: typ, conn: t.id}
	// Every field is decoded, also those the tap does not use: a frame too
	// short for its type is answered here, with its tag. The library would
	// answer it with no tag at all, and the request would never end.
	switch typ {
	case msgTattach:
		d.u32() // fid
		d.u32() // afid
		uname := d.str()
		d.str() // aname
		nuname := d.u32()
		if d.err {
			return nil, linux.EINVAL
		}
		r.attachUID, r.parsed = resolveAttachUID(uname, nuname), true
	case msgTlcreate:
		d.u32() // fid
		d.str() // name
		d.u32() // flags
		r.mode = d.u32()
		d.u32() // gid
		r.parsed = true
	case msgTmkdir:
		d.u32() // dfid
		d.str() // name
		r.mode = d.u32()
		d.u32() // gid
		r.parsed = true
	case msgTsetattr:
		d.u32() // fid
		d.u32() // valid
		r.mode = d.u32()
		d.u32() // uid
		d.u32() // gid
		d.u64() // size
		d.u64() // atime
		d.u64()
		d.u64() // mtime
		d.u64()
		r.parsed = true
	case msgTxattrwalk:
		d.u32() // fid
		d.u32() // newfid
		d.str() // name
		r.parsed = true
	case msgTlock:
		d.u32() // fid
		d.u8()  // type
		d.u32() // flags
		d.u64() // start
		d.u64() // length
		d.u32() // proc_id
		d.str() // client_id
		r.parsed = true
	case msgTxattrcreate:
		// The library buffers the value it announces, unbounded: a
		// client could make the server allocate without limit. Linux
		// caps values at XATTR_SIZE_MAX, and so do we.
		d.u32() // fid
		d.str() // name
		size := d.u64()
		d.u32() // flags
		if !d.err && size > xattrSizeMax {
			return nil, linux.E2BIG
		}
	case msgTgetlock:
		fid := d.u32()
		q := &lockQuery{typ: d.u8(), start: d.u64(), length: d.u64(), procID: d.u32(), client: d.str()}
		if d.err {
			return nil, linux.EINVAL
		}
		r.getlock, r.parsed = q, true
		e := newEncoder(msgTlock, tag)
		e.u32(fid)
		e.u8(q.typ)
		e.u32(0) // flags: never block
		e.u64(q.start)
		e.u64(q.length)
		e.u32(q.procID)
		e.str(q.client)
		frame = e.frame()
	}
	if d.err {
		return nil, linux.EINVAL
	}
	t.srv.requests.register(r)
	t.track(tag, r)
	return frame, 0
}

// anonymousUID is whom an attach speaks for when it names no user this
// host knows: nobody, as the Linux client's own default user name
// (V9FS_DEFUSER, sent with access=any) says. Minimal guests and containers
// often have no "nobody" in their passwd file.
const anonymousUID = 65534

// resolveAttachUID returns the uid a Tattach speaks for: n_uname, as Linux
// sends it, else a numeric uname or a user name known to this host, else
// nobody.
func resolveAttachUID(uname string, nuname uint32) uint32 {
	if nuname != noUID {
		return nuname
	}
	if n, err := strconv.ParseUint(uname, 10, 32); err == nil && n != noUID {
		return uint32(n)
	}
	if u, err := user.Lookup(uname); err == nil {
		if n, err := strconv.ParseUint(u.Uid, 10, 32); err == nil {
			return uint32(n)
		}
	}
	return anonymousUID
}

// answerError writes an Rlerror for a request the library never sees.
// flushFrame reads a Tflush. One that names its own tag is answered here:
// the library would wait for that tag, its own, to finish, forever.
// Others go on to the library.
func (t *tap) flushFrame(hdr [headerSize]byte, size uint32, tag uint16) error {
	frame := make([]byte, size)
	copy(frame, hdr[:])
	if _, err := io.ReadFull(t.in, frame[headerSize:]); err != nil {
		t.noteReadError(err)
		return err
	}
	if b := frame[headerSize:]; len(b) >= 2 && binary.LittleEndian.Uint16(b) == tag {
		t.writeMu.Lock()
		_, err := t.conn.Write(newEncoder(msgRflush, tag).frame())
		t.writeMu.Unlock()
		return err
	}
	t.track(tag, nil)
	t.pending = frame
	return nil
}
