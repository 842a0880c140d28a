package vhostuser

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// Message types of the vhost-user protocol (front end to back end).
const (
	msgGetFeatures         = 1
	msgSetFeatures         = 2
	msgSetOwner            = 3
	msgResetOwner          = 4
	msgSetMemTable         = 5
	msgSetLogBase          = 6
	msgSetLogFd            = 7
	msgSetVringNum         = 8
	msgSetVringAddr        = 9
	msgSetVringBase        = 10
	msgGetVringBase        = 11
	msgSetVringKick        = 12
	msgSetVringCall        = 13
	msgSetVringErr         = 14
	msgGetProtocolFeatures = 15
	msgSetProtocolFeatures = 16
	msgGetQueueNum         = 17
	msgSetVringEnable      = 18
	msgResetDevice         = 34

	// msgKeeperInflight is private to a keeper and its worker
	// (keeper.go): its descriptor is the in-flight log (inflight.go).
	// QEMU does not send it (it is outside vhost-user's numbers).
	msgKeeperInflight = 0x10001
)

// Header flags.
const (
	flagVersion   = 0x1
	flagReply     = 1 << 2
	flagNeedReply = 1 << 3
)

// Feature bits.
const (
	featIndirectDesc     = 1 << 28 // VIRTIO_RING_F_INDIRECT_DESC
	featProtocolFeatures = 1 << 30 // VHOST_USER_F_PROTOCOL_FEATURES
	featVersion1         = 1 << 32 // VIRTIO_F_VERSION_1

	protoMQ        = 1 << 0 // VHOST_USER_PROTOCOL_F_MQ
	protoReplyAck  = 1 << 3 // VHOST_USER_PROTOCOL_F_REPLY_ACK
	protoResetDev  = 1 << 13
	kickNoFd       = 1 << 8 // in SET_VRING_KICK/CALL/ERR: no descriptor (polling)
	kickIndexMask  = 0xff
	headerSize     = 12
	maxPayload     = 4096 // larger than any message handled here
	maxMsgFds      = 8    // VHOST_MEMORY_BASELINE_NREGIONS
	memRegionSize  = 32
	memTableHeader = 8
)

// message is one vhost-user message with the descriptors it carried.
type message struct {
	req     uint32
	flags   uint32
	payload []byte
	fds     []int
}

// u64 is the payload as one 64-bit value (features, kick index).
func (m *message) u64() (uint64, error) {
	if len(m.payload) < 8 {
		return 0, fmt.Errorf("message %d: payload of %d bytes, want 8", m.req, len(m.payload))
	}
	return binary.LittleEndian.Uint64(m.payload), nil
}

// state is the payload as a vring state (index, num).
func (m *message) state() (uint32, uint32, error) {
	if len(m.payload) < 8 {
		return 0, 0, fmt.Errorf("message %d: payload of %d bytes, want 8", m.req, len(m.payload))
	}
	return binary.LittleEndian.Uint32(m.payload), binary.LittleEndian.Uint32(m.payload[4:]), nil
}

// vringAddrSize is struct vhost_vring_addr: index, flags, then the
// descriptor table's, used ring's, available ring's and log's addresses.
const vringAddrSize = 40

// vringAddr holds the ring addresses of SET_VRING_ADDR (QEMU's virtual
// addresses, translated through the memory table).
type vringAddr struct{ desc, used, avail uint64 }

// vringAddr reads the payload of SET_VRING_ADDR.
func (m *message) vringAddr() (vringAddr, error) {
	if len(m.payload) < vringAddrSize {
		return vringAddr{}, fmt.Errorf("vring address: %d bytes", len(m.payload))
	}
	return vringAddr{
		desc:  binary.LittleEndian.Uint64(m.payload[8:]),
		used:  binary.LittleEndian.Uint64(m.payload[16:]),
		avail: binary.LittleEndian.Uint64(m.payload[24:]),
	}, nil
}

// checkQueueSize refuses a SET_VRING_NUM size a split ring cannot have
// (a power of two up to maxQueueSize).
func checkQueueSize(index, size uint32) error {
	if size == 0 || size > maxQueueSize || size&(size-1) != 0 {
		return fmt.Errorf("queue %d: size %d", index, size)
	}
	return nil
}

// u64Bytes is a u64 payload.
func u64Bytes(v uint64) []byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return b[:]
}

// stateBytes is a vring state payload (index, num).
func stateBytes(i int, v uint32) []byte {
	var b [8]byte
	binary.LittleEndian.PutUint32(b[:], uint32(i))
	binary.LittleEndian.PutUint32(b[4:], v)
	return b[:]
}

// closeFds closes descriptors the handler did not take.
func (m *message) closeFds() {
	for _, fd := range m.fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	m.fds = nil
}

// takeFd returns the message's only descriptor, leaving the others to
// closeFds; -1 if it has none.
func (m *message) takeFd() int {
	if len(m.fds) == 0 {
		return -1
	}
	fd := m.fds[0]
	m.fds[0] = -1
	return fd
}

// readMessage reads one message from the unix stream socket fd (a
// header, then exactly its payload; descriptors ride on the header).
func readMessage(fd int, buf []byte) (*message, error) {
	oob := make([]byte, unix.CmsgSpace(maxMsgFds*4))
	hdr := buf[:headerSize]
	n, oobn, _, _, err := recvmsgRetry(fd, hdr, oob)
	if err != nil {
		return nil, err
	}
	m := &message{}
	if oobn > 0 {
		scms, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil {
			for _, s := range scms {
				if fds, err := unix.ParseUnixRights(&s); err == nil {
					m.fds = append(m.fds, fds...)
				}
			}
		}
	}
	if n == 0 {
		m.closeFds()
		return nil, errClosed
	}
	if n < headerSize {
		if err := readFull(fd, hdr[n:]); err != nil {
			m.closeFds()
			return nil, err
		}
	}
	m.req = binary.LittleEndian.Uint32(hdr)
	m.flags = binary.LittleEndian.Uint32(hdr[4:])
	size := binary.LittleEndian.Uint32(hdr[8:])
	if size > maxPayload {
		m.closeFds()
		return nil, fmt.Errorf("message %d: payload of %d bytes (limit %d)", m.req, size, maxPayload)
	}
	m.payload = buf[headerSize : headerSize+int(size)]
	if err := readFull(fd, m.payload); err != nil {
		m.closeFds()
		return nil, err
	}
	return m, nil
}

var errClosed = fmt.Errorf("vhost-user: front end closed the connection")

func recvmsgRetry(fd int, p, oob []byte) (int, int, int, unix.Sockaddr, error) {
	for {
		n, oobn, fl, from, err := unix.Recvmsg(fd, p, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			return n, oobn, fl, from, err
		}
	}
}

func readFull(fd int, p []byte) error {
	for len(p) > 0 {
		n, err := unix.Read(fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return errClosed
		}
		p = p[n:]
	}
	return nil
}

// reply sends a reply to m with the payload.
func reply(fd int, m *message, payload []byte) error {
	b := make([]byte, headerSize+len(payload))
	binary.LittleEndian.PutUint32(b, m.req)
	binary.LittleEndian.PutUint32(b[4:], flagVersion|flagReply)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(payload)))
	copy(b[headerSize:], payload)
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// sendMessage sends a message with the descriptors fds (which stay the
// caller's) on the unix stream socket fd.
func sendMessage(fd int, req, flags uint32, payload []byte, fds []int) error {
	b := make([]byte, headerSize+len(payload))
	binary.LittleEndian.PutUint32(b, req)
	binary.LittleEndian.PutUint32(b[4:], flagVersion|flags)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(payload)))
	copy(b[headerSize:], payload)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	for {
		n, err := unix.SendmsgN(fd, b, oob, nil, unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n < len(b) {
			// The descriptors went with the first part.
			b, oob = b[n:], nil
			continue
		}
		return nil
	}
}

func replyU64(fd int, m *message, v uint64) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return reply(fd, m, b[:])
}

// vringFdArg reads the payload of SET_VRING_KICK, CALL or ERR: the queue
// index and the eventfd that came with it (-1 when the message says it
// has none). A kick without a descriptor (polling mode) is refused.
func vringFdArg(m *message) (index uint32, fd int, err error) {
	v, err := m.u64()
	if err != nil {
		return 0, -1, err
	}
	index, fd = uint32(v&kickIndexMask), -1
	if v&kickNoFd == 0 {
		if fd = m.takeFd(); fd < 0 {
			return index, -1, fmt.Errorf("queue %d: no descriptor", index)
		}
	} else if m.req == msgSetVringKick {
		return index, -1, fmt.Errorf("queue %d: polling mode (no kick descriptor) is not supported", index)
	}
	return index, fd, nil
}
