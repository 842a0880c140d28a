package p9srv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/union9p/union9p/test/p9wire"
	"golang.org/x/sys/unix"
)

// versionFrame is a Tversion for msize 64 KiB.
func versionFrame() []byte {
	return p9wire.AppendFrame(nil, p9wire.Tversion, p9wire.NoTag, new(p9wire.Encoder).U32(65536).Str("9P2000.L").Bytes())
}

func attachFrame(tag uint16, fid uint32) []byte {
	return p9wire.AppendFrame(nil, p9wire.Tattach, tag, new(p9wire.Encoder).U32(fid).U32(p9wire.NoFid).Str("").Str("").U32(0).Bytes())
}

// exchange writes raw bytes and reads one frame; the connection may
// instead be closed (io.EOF or a reset).
func exchange(t *testing.T, c net.Conn, raw []byte) (p9wire.Frame, error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(raw); err != nil {
		return p9wire.Frame{}, err
	}
	return p9wire.ReadFrame(c, 1<<20)
}

func rlerrorOf(f p9wire.Frame) unix.Errno {
	if f.Type != p9wire.Rlerror || len(f.Body) != 4 {
		return 0
	}
	return unix.Errno(binary.LittleEndian.Uint32(f.Body))
}

// TestHostileFrames sends malformed requests. Each must be answered with
// an error or end that one connection; a well-behaved client on another
// connection keeps working throughout, and the server never crashes.
func TestHostileFrames(t *testing.T) {
	ts := startServer(t, serverOptions{})
	good := ts.dial(t, 0)
	goodStillWorks := func(when string) {
		t.Helper()
		if _, err := good.Walk(0, 1, "dir"); err != nil {
			t.Fatalf("after %s: good client: %v", when, err)
		}
		if err := good.Clunk(1); err != nil {
			t.Fatalf("after %s: good client: %v", when, err)
		}
	}

	answered := []struct {
		name  string
		frame []byte
		want  unix.Errno // 0: any Rlerror
	}{
		{"walk to ..", p9wire.AppendFrame(nil, p9wire.Twalk, 1, new(p9wire.Encoder).U32(0).U32(5).U16(1).Str("..").Bytes()), unix.EINVAL},
		{"walk name with slash", p9wire.AppendFrame(nil, p9wire.Twalk, 1, new(p9wire.Encoder).U32(0).U32(5).U16(1).Str("dir/../..").Bytes()), unix.EINVAL},
		{"walk empty name", p9wire.AppendFrame(nil, p9wire.Twalk, 1, new(p9wire.Encoder).U32(0).U32(5).U16(1).Str("").Bytes()), unix.EINVAL},
		{"walk from fid never attached", p9wire.AppendFrame(nil, p9wire.Twalk, 1, new(p9wire.Encoder).U32(99).U32(5).U16(0).Bytes()), unix.EBADF},
		{"getattr of fid never attached", p9wire.AppendFrame(nil, p9wire.Tgetattr, 1, new(p9wire.Encoder).U32(1234).U64(0x7ff).Bytes()), unix.EBADF},
		{"lcreate name with slash", p9wire.AppendFrame(nil, p9wire.Tlcreate, 1, new(p9wire.Encoder).U32(0).Str("../x").U32(2).U32(0o644).U32(0).Bytes()), unix.EINVAL},
		{"rename to ..", p9wire.AppendFrame(nil, p9wire.Trenameat, 1, new(p9wire.Encoder).U32(0).Str("file").U32(0).Str("..").Bytes()), unix.EINVAL},
		{"truncated getlock", p9wire.AppendFrame(nil, p9wire.Tgetlock, 1, []byte{0, 0, 0, 0, 1}), unix.EINVAL},
		{"library extension Tucreate", p9wire.AppendFrame(nil, 128, 1, new(p9wire.Encoder).U32(0).Str("x").U32(2).U32(0o644).U32(0).U32(0).Bytes()), unix.ENOSYS},
		{"unknown type", p9wire.AppendFrame(nil, 250, 1, []byte("garbage")), 0},
		{"read with count above msize", p9wire.AppendFrame(nil, p9wire.Tread, 1, new(p9wire.Encoder).U32(0).U64(0).U32(1<<30).Bytes()), 0},
		{"truncated walk", p9wire.AppendFrame(nil, p9wire.Twalk, 1, new(p9wire.Encoder).U32(0).U32(5).U16(3).Str("a").Bytes()), 0},
	}
	for _, tt := range answered {
		c := ts.rawConn(t)
		if f, err := exchange(t, c, versionFrame()); err != nil || f.Type != p9wire.Rversion {
			t.Fatalf("%s: version: %v %v", tt.name, f, err)
		}
		if f, err := exchange(t, c, attachFrame(0, 0)); err != nil || f.Type != p9wire.Rattach {
			t.Fatalf("%s: attach: %v %v", tt.name, f, err)
		}
		f, err := exchange(t, c, tt.frame)
		switch {
		case err != nil:
			// Closing the connection is an acceptable answer too.
		case f.Type != p9wire.Rlerror:
			t.Errorf("%s: answered type %d, want Rlerror", tt.name, f.Type)
		case tt.want != 0 && rlerrorOf(f) != tt.want:
			t.Errorf("%s: errno %v, want %v", tt.name, rlerrorOf(f), tt.want)
		}
		goodStillWorks(tt.name)
	}

	closed := []struct {
		name string
		raw  []byte
	}{
		{"size below header", []byte{3, 0, 0, 0, 100, 0, 0}},
		{"oversized frame", append(binary.LittleEndian.AppendUint32(nil, 64<<20), p9wire.Twrite, 1, 0)},
		{"oversized inspected frame", append(binary.LittleEndian.AppendUint32(nil, 0xffffffff), p9wire.Tattach, 1, 0)},
		{"garbage", bytes.Repeat([]byte{0xff}, 64)},
		{"truncated frame then close", p9wire.AppendFrame(nil, p9wire.Tattach, 1, []byte{1, 2, 3})[:9]},
	}
	for _, tt := range closed {
		c := ts.rawConn(t)
		if f, err := exchange(t, c, versionFrame()); err != nil || f.Type != p9wire.Rversion {
			t.Fatalf("%s: version: %v %v", tt.name, f, err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(tt.raw)
		if tt.name == "truncated frame then close" {
			c.(*net.UnixConn).CloseWrite()
		}
		// The server may answer errors, but must end the connection.
		for {
			_, err := p9wire.ReadFrame(c, 1<<20)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Errorf("%s: connection still open", tt.name)
				}
				break
			}
		}
		goodStillWorks(tt.name)
	}

	// A frame before Tversion and an attach without version.
	c := ts.rawConn(t)
	if f, err := exchange(t, c, attachFrame(3, 0)); err == nil && f.Type != p9wire.Rattach && f.Type != p9wire.Rlerror {
		t.Errorf("attach before version answered type %d", f.Type)
	}
	goodStillWorks("attach before version")
	_ = io.EOF
}

// TestInjectedAnswersDoNotInterleave mixes answers the tap writes itself
// (refused extension messages) with large library answers (reads) on one
// connection; every frame must arrive whole.
func TestInjectedAnswersDoNotInterleave(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c, err := p9wire.Dial("unix", ts.sock, 1<<20)
	must(t, err)
	defer c.Close()
	_, err = c.Attach(0, "", "", 0)
	must(t, err)
	_, err = c.Walk(0, 1)
	must(t, err)
	_, _, err = c.Lcreate(1, "big", p9wire.ORdwr, 0o644, 0)
	must(t, err)
	payload := bytes.Repeat([]byte{'z'}, 900<<10)
	_, err = c.Write(1, 0, payload)
	must(t, err)

	done := make(chan error, 40)
	for i := range 40 {
		go func() {
			if i%2 == 0 {
				data, err := c.Read(1, 0, uint32(len(payload)))
				if err == nil && !bytes.Equal(data, payload) {
					err = errors.New("read data differs")
				}
				done <- err
				return
			}
			call, err := c.Start(130, new(p9wire.Encoder).U32(0).Str("x").U32(0o755).U32(0).U32(0).Bytes())
			if err != nil {
				done <- err
				return
			}
			_, err = call.Wait()
			if !errors.Is(err, unix.ENOSYS) {
				done <- errors.New("extension not refused: " + errString(err))
				return
			}
			done <- nil
		}()
	}
	for range 40 {
		must(t, <-done)
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// Two Tlopens of one fid sent back to back must not leave a host
// descriptor behind when the fid is clunked.
func TestPipelinedOpensOfOneFidLeakNothing(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.dial(t, 0)
	countFds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		must(t, err)
		return len(ents)
	}
	before := countFds()
	for i := 0; i < 200; i++ {
		_, err := c.Walk(0, 1, "file")
		must(t, err)
		body := new(p9wire.Encoder).U32(1).U32(p9wire.ORdonly).Bytes()
		a, err := c.Start(p9wire.Tlopen, body)
		must(t, err)
		b, err := c.Start(p9wire.Tlopen, body)
		must(t, err)
		a.Wait()
		b.Wait()
		must(t, c.Clunk(1))
	}
	if after := countFds(); after > before+2 {
		t.Fatalf("%d descriptors before, %d after 200 pipelined double opens", before, after)
	}
}

// The library would buffer whatever value size a Txattrcreate announces.
func TestHugeXattrcreateRefused(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.dial(t, 0)
	_, err := c.Walk(0, 1, "file")
	must(t, err)
	body := new(p9wire.Encoder).U32(1).Str("user.big").U64(1 << 40).U32(0).Bytes()
	if _, err := c.RPC(p9wire.Txattrcreate, body); err != unix.E2BIG {
		t.Fatalf("Txattrcreate of 1 TiB: %v, want E2BIG", err)
	}
	// The connection goes on.
	if _, err := c.Walk(0, 2, "file"); err != nil {
		t.Fatal(err)
	}
}

// A request too short for its type is answered with its own tag, so that
// the client (and the server's shutdown) is not left waiting for it.
func TestShortRequestsAnsweredWithTheirTag(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.rawConn(t)
	if f, err := exchange(t, c, versionFrame()); err != nil || f.Type != p9wire.Rversion {
		t.Fatalf("version: %v %v", f, err)
	}
	if f, err := exchange(t, c, attachFrame(0, 0)); err != nil || f.Type != p9wire.Rattach {
		t.Fatalf("attach: %v %v", f, err)
	}
	for _, typ := range []uint8{p9wire.Tlock, p9wire.Txattrwalk, p9wire.Tsetattr, p9wire.Tlcreate, p9wire.Tmkdir, p9wire.Tattach, p9wire.Txattrcreate} {
		f, err := exchange(t, c, p9wire.AppendFrame(nil, typ, 77, []byte{0, 0, 0, 0, 1}))
		if err != nil {
			t.Fatalf("type %d: %v", typ, err)
		}
		if f.Type != p9wire.Rlerror || f.Tag != 77 || rlerrorOf(f) != unix.EINVAL {
			t.Errorf("short frame of type %d answered type %d tag %d errno %v, want EINVAL on tag 77", typ, f.Type, f.Tag, rlerrorOf(f))
		}
	}
}
