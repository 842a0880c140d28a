package p9srv

import (
	"encoding/binary"
	"fmt"
	"net"
	"strconv"

	"github.com/hugelgupf/p9/linux"
)

// How the wire tap writes responses: whole frames under writeMu, small
// pieces coalesced into one write, and the responses it rewrites (see
// wiretap.go).

// frameAssembly is the state of the response frame being written.
type frameAssembly struct {
	hdr    [headerSize]byte
	hdrN   int
	inBody bool
	left   int      // body bytes still to come
	req    *request // request answered by this frame
	buffer bool     // the frame is collected in buf and written at its end
	buf    []byte

	// pending holds the start of a passed-through frame (its header and
	// small pieces) until a large piece or the end comes, so that a
	// response leaves in one write(v) and wakes the client once.
	pending []byte
}

// coalesceLimit is the largest piece of a frame copied into pending; larger
// ones (read data) go out with pending in one writev, uncopied.
const coalesceLimit = 64 << 10

// Write takes response bytes from the library; see frameAssembly.
func (t *tap) Write(p []byte) (int, error) {
	total := len(p)
	a := &t.out
	for len(p) > 0 {
		if !a.inBody {
			n := copy(a.hdr[a.hdrN:], p)
			a.hdrN += n
			p = p[n:]
			if a.hdrN < headerSize {
				continue
			}
			if err := t.startFrame(); err != nil {
				return total - len(p), err
			}
		} else {
			n := min(len(p), a.left)
			if err := t.frameBytes(p[:n]); err != nil {
				return total - len(p), err
			}
			a.left -= n
			p = p[n:]
		}
		if a.inBody && a.left == 0 {
			if err := t.endFrame(); err != nil {
				return total - len(p), err
			}
		}
	}
	return total, nil
}

func (t *tap) startFrame() error {
	a := &t.out
	a.hdrN = 0
	size := binary.LittleEndian.Uint32(a.hdr[:4])
	if size < headerSize {
		return fmt.Errorf("p9srv: library wrote a frame of size %d", size)
	}
	typ, tag := a.hdr[4], binary.LittleEndian.Uint16(a.hdr[5:])
	a.inBody, a.left = true, int(size-headerSize)
	a.req = nil
	if typ != msgRversion || tag != noTag {
		a.req = t.answered(tag)
	}
	// Error answers are small: collect them so that the errno can be
	// replaced and traced. So are the answers the tap rewrites.
	a.buffer = typ == msgRlerror || (a.req != nil && (a.req.getlock != nil || a.req.emptyXattrList))
	if a.buffer {
		a.buf = append(a.buf[:0], a.hdr[:]...)
		return nil
	}
	t.writeMu.Lock()
	a.pending = append(a.pending[:0], a.hdr[:]...)
	if t.srv.cfg.Trace {
		t.traceResponse(a.hdr[:])
	}
	return nil
}

// flushPending writes what pending holds followed by p, in one writev where
// the connection supports it.
func (t *tap) flushPending(p []byte) error {
	a := &t.out
	var err error
	switch {
	case len(p) == 0 && len(a.pending) == 0:
	case len(p) == 0:
		_, err = t.conn.Write(a.pending)
	case len(a.pending) == 0:
		_, err = t.conn.Write(p)
	default:
		bufs := net.Buffers{a.pending, p}
		_, err = bufs.WriteTo(t.conn)
	}
	a.pending = a.pending[:0]
	return err
}

func (t *tap) frameBytes(p []byte) error {
	a := &t.out
	if a.buffer {
		a.buf = append(a.buf, p...)
		return nil
	}
	last := len(p) == a.left
	if !last && len(p) <= coalesceLimit {
		a.pending = append(a.pending, p...)
		return nil
	}
	if last && len(p) <= coalesceLimit {
		a.pending = append(a.pending, p...)
		p = nil
	}
	if err := t.flushPending(p); err != nil {
		a.inBody = false
		t.writeMu.Unlock()
		return err
	}
	return nil
}

func (t *tap) endFrame() error {
	a := &t.out
	a.inBody = false
	if !a.buffer {
		err := t.flushPending(nil)
		t.writeMu.Unlock()
		return err
	}
	frame := a.buf
	if a.req != nil {
		frame = rewriteResponse(a.req, frame)
	}
	t.writeMu.Lock()
	_, err := t.conn.Write(frame)
	t.writeMu.Unlock()
	if t.srv.cfg.Trace {
		t.traceResponse(frame)
	}
	return err
}

// rewriteResponse turns the library's response to r into what the client
// asked for.
func rewriteResponse(r *request, frame []byte) []byte {
	typ := frame[4]
	switch {
	case typ == msgRlerror && r.errno != 0:
		e := newEncoder(msgRlerror, r.tag)
		e.u32(uint32(r.errno))
		return e.frame()
	case typ == msgRxattrwalk && r.emptyXattrList:
		e := newEncoder(msgRxattrwalk, r.tag)
		e.u64(0)
		return e.frame()
	case typ == msgRlock && r.getlock != nil:
		q := r.getlock
		if !q.answered {
			e := newEncoder(msgRlerror, r.tag)
			e.u32(uint32(linux.EIO))
			return e.frame()
		}
		e := newEncoder(msgRgetlock, r.tag)
		e.u8(q.result.typ)
		e.u64(q.result.start)
		e.u64(q.result.length)
		e.u32(q.result.procID)
		e.str(q.client)
		return e.frame()
	}
	return frame
}

func (t *tap) traceResponse(frame []byte) {
	typ, tag := frame[4], binary.LittleEndian.Uint16(frame[5:])
	if typ == msgRlerror && len(frame) >= headerSize+4 {
		errno := linux.Errno(binary.LittleEndian.Uint32(frame[headerSize:]))
		t.log.Info("9p send", "type", msgName(typ), "tag", tag, "errno", errno.Error())
		return
	}
	t.log.Info("9p send", "type", msgName(typ), "tag", tag, "size", binary.LittleEndian.Uint32(frame))
}

// msgName names a message type for traces.
func msgName(typ uint8) string {
	if n, ok := messageNames[typ]; ok {
		return n
	}
	return "type" + strconv.Itoa(int(typ))
}

var messageNames = map[uint8]string{
	6: "Tlerror", 7: "Rlerror", 8: "Tstatfs", 9: "Rstatfs", 12: "Tlopen", 13: "Rlopen",
	14: "Tlcreate", 15: "Rlcreate", 16: "Tsymlink", 17: "Rsymlink", 18: "Tmknod", 19: "Rmknod",
	20: "Trename", 21: "Rrename", 22: "Treadlink", 23: "Rreadlink", 24: "Tgetattr", 25: "Rgetattr",
	26: "Tsetattr", 27: "Rsetattr", 30: "Txattrwalk", 31: "Rxattrwalk", 32: "Txattrcreate",
	33: "Rxattrcreate", 40: "Treaddir", 41: "Rreaddir", 50: "Tfsync", 51: "Rfsync", 52: "Tlock",
	53: "Rlock", 54: "Tgetlock", 55: "Rgetlock", 70: "Tlink", 71: "Rlink", 72: "Tmkdir", 73: "Rmkdir",
	74: "Trenameat", 75: "Rrenameat", 76: "Tunlinkat", 77: "Runlinkat", 100: "Tversion",
	101: "Rversion", 102: "Tauth", 103: "Rauth", 104: "Tattach", 105: "Rattach", 108: "Tflush",
	109: "Rflush", 110: "Twalk", 111: "Rwalk", 116: "Tread", 117: "Rread", 118: "Twrite",
	119: "Rwrite", 120: "Tclunk", 121: "Rclunk", 122: "Tremove", 123: "Rremove",
}
