package p9srv

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/union9p/union9p/test/p9wire"
	"golang.org/x/sys/unix"
)

// Tflush: the flushed request's answer, if any, comes before the Rflush;
// a Tflush of a tag not in flight or of its own tag is answered at once.
func TestFlushOrder(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.rawConn(t)
	if f, err := exchange(t, c, versionFrame()); err != nil || f.Type != p9wire.Rversion {
		t.Fatalf("version: %v %v", f, err)
	}
	if f, err := exchange(t, c, attachFrame(0, 0)); err != nil || f.Type != p9wire.Rattach {
		t.Fatalf("attach: %v %v", f, err)
	}
	enc := func() *p9wire.Encoder { return new(p9wire.Encoder) }
	var raw []byte
	raw = p9wire.AppendFrame(raw, p9wire.Twalk, 1, enc().U32(0).U32(1).U16(1).Str("file").Bytes())
	raw = p9wire.AppendFrame(raw, p9wire.Tlopen, 2, enc().U32(1).U32(p9wire.ORdonly).Bytes())
	for i := range 20 {
		tag := uint16(10 + 2*i)
		raw = p9wire.AppendFrame(raw, p9wire.Tread, tag, enc().U32(1).U64(0).U32(4096).Bytes())
		raw = p9wire.AppendFrame(raw, p9wire.Tflush, tag+1, enc().U16(tag).Bytes())
	}
	raw = p9wire.AppendFrame(raw, p9wire.Tflush, 100, enc().U16(999).Bytes()) // not in flight
	raw = p9wire.AppendFrame(raw, p9wire.Tflush, 101, enc().U16(101).Bytes()) // itself
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	answered := map[uint16]uint8{}
	for len(answered) < 2+40+2 {
		f, err := p9wire.ReadFrame(c, 1<<20)
		if err != nil {
			t.Fatalf("after %d answers: %v", len(answered), err)
		}
		if _, dup := answered[f.Tag]; dup {
			t.Fatalf("tag %d answered twice", f.Tag)
		}
		if f.Type == p9wire.Rflush && f.Tag >= 10 && f.Tag < 50 {
			if _, ok := answered[f.Tag-1]; !ok {
				t.Errorf("Rflush %d came before the answer to tag %d", f.Tag, f.Tag-1)
			}
		}
		answered[f.Tag] = f.Type
	}
	if answered[100] != p9wire.Rflush || answered[101] != p9wire.Rflush {
		t.Errorf("flush of unknown/own tag answered %d/%d", answered[100], answered[101])
	}
}

// Tversion starts a new session: the connection's fids are gone.
func TestVersionResetsFids(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.rawConn(t)
	exchange(t, c, versionFrame())
	exchange(t, c, attachFrame(0, 0))
	f, err := exchange(t, c, p9wire.AppendFrame(nil, p9wire.Twalk, 1, new(p9wire.Encoder).U32(0).U32(1).U16(1).Str("file").Bytes()))
	if err != nil || f.Type != p9wire.Rwalk {
		t.Fatalf("walk: %v %v", f, err)
	}
	if f, err := exchange(t, c, versionFrame()); err != nil || f.Type != p9wire.Rversion {
		t.Fatalf("second version: %v %v", f, err)
	}
	f, err = exchange(t, c, p9wire.AppendFrame(nil, p9wire.Tgetattr, 2, new(p9wire.Encoder).U32(1).U64(p9wire.GetattrBasic).Bytes()))
	if err != nil || rlerrorOf(f) != unix.EBADF {
		t.Errorf("getattr of a fid from before Tversion: %v %v, want EBADF", f, err)
	}
	// fid 0 is free again.
	if f, err := exchange(t, c, attachFrame(3, 0)); err != nil || f.Type != p9wire.Rattach {
		t.Errorf("attach after version: %v %v", f, err)
	}
}

// A connection holds at most MaxFids fids: past that, EMFILE; clunking
// one makes room.
func TestFidLimit(t *testing.T) {
	var logs lockedBuffer
	ts := startServer(t, serverOptions{maxFids: 8, logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c := ts.dial(t, 0) // fid 0
	for fid := uint32(1); fid < 8; fid++ {
		if _, err := c.Walk(0, fid, "file"); err != nil {
			t.Fatalf("fid %d: %v", fid, err)
		}
	}
	_, err := c.Walk(0, 8, "file")
	wantErrno(t, "walk past the fid limit", err, unix.EMFILE)
	if out := logs.String(); !strings.Contains(out, "fid limit reached") || !strings.Contains(out, "limit=8") {
		t.Errorf("no log line for the fid limit:\n%s", out)
	}
	must(t, c.Clunk(3))
	if _, err := c.Walk(0, 8, "file"); err != nil {
		t.Errorf("walk after a clunk: %v", err)
	}
	// Another connection has its own limit.
	if _, err := ts.dial(t, 0).Walk(0, 1, "file"); err != nil {
		t.Errorf("other connection: %v", err)
	}
}

// A rename through one connection reaches the fids of another standing on
// or below the renamed name: their copy-ups and writes land under the new
// name.
func TestRenameSeenAcrossConnections(t *testing.T) {
	ts := startServer(t, serverOptions{})
	a := ts.dial(t, 0)
	b := ts.dial(t, 0)
	_, err := b.Mkdir(0, "d1", 0o755, 0)
	must(t, err)
	_, err = b.Walk(0, 1, "d1")
	must(t, err)
	_, _, err = b.Lcreate(1, "f", p9wire.ORdwr, 0o644, 0)
	must(t, err)
	must(t, b.Clunk(1))

	// a: one fid on d1/f (walked in one Twalk), one on dir/a (lower).
	_, err = a.Walk(0, 2, "d1", "f")
	must(t, err)
	_, err = a.Walk(0, 3, "dir", "a")
	must(t, err)

	_, err = b.Walk(0, 4, "dir")
	must(t, err)
	must(t, b.Renameat(0, "d1", 0, "d2"))
	must(t, b.Renameat(4, "a", 4, "a2"))

	for _, fid := range []uint32{2, 3} {
		_, _, err = a.Lopen(fid, p9wire.OWronly)
		must(t, err)
		_, err = a.Write(fid, 0, []byte("via a"))
		must(t, err)
	}
	for _, p := range []string{"d2/f", "dir/a2"} {
		if got, err := os.ReadFile(filepath.Join(ts.upper, p)); err != nil || string(got) != "via a" {
			t.Errorf("%s in the upper: %q %v", p, got, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(ts.upper, "d1")); err == nil {
		t.Errorf("d1 made again in the upper after the rename")
	}
	// dir/a is the rename's whiteout, not a copy-up.
	if fi, err := os.Lstat(filepath.Join(ts.upper, "dir/a")); err == nil && fi.Mode().IsRegular() {
		t.Errorf("dir/a copied up after the rename")
	}
}

// Names are kept only while fids stand on them.
func TestNamesForgottenAfterClunk(t *testing.T) {
	ts := startServer(t, serverOptions{})
	for i := range 300 {
		must(t, os.WriteFile(filepath.Join(ts.upper, "f"+itoa(uint32(i))), nil, 0o644))
	}
	c := ts.dial(t, 0)
	_, err := c.Walk(0, 1, "dir")
	must(t, err)
	for i := range 300 {
		_, err := c.Walk(0, 2, "f"+itoa(uint32(i)))
		must(t, err)
		_, err = c.Walk(1, 3, "sub")
		must(t, err)
		must(t, c.Clunk(2))
		must(t, c.Clunk(3))
	}
	_, err = c.Walk(0, 4, "dir", "sub")
	must(t, err)
	must(t, c.Clunk(1))
	must(t, c.Clunk(4))
	st := ts.srv.stateFor(ts.srv.cfg.Union)
	defer ts.srv.dropState(st)
	st.names.mu.Lock()
	defer st.names.mu.Unlock()
	if n := len(st.names.root.children); n != 0 {
		t.Errorf("%d names kept under the root after every fid below it was clunked", n)
	}
	if n := len(st.names.root.nodes); n != 1 {
		t.Errorf("%d nodes kept at the root, want the attach's one", n)
	}
}

// A client that sends requests and never reads the answers stalls only
// itself: the server stops reading it once its handlers are all blocked
// writing, so memory and goroutines stay bounded, and other connections
// go on.
func TestStalledClientBounded(t *testing.T) {
	ts := startServer(t, serverOptions{})
	must(t, os.WriteFile(filepath.Join(ts.upper, "big"), bytes.Repeat([]byte{'x'}, 1<<20), 0o644))
	c, err := net.Dial("unix", ts.sock)
	must(t, err)
	defer c.Close()
	c.(*net.UnixConn).SetReadBuffer(4096)
	vf := p9wire.AppendFrame(nil, p9wire.Tversion, p9wire.NoTag, new(p9wire.Encoder).U32(1<<20).Str("9P2000.L").Bytes())
	for _, raw := range [][]byte{vf, attachFrame(0, 0),
		p9wire.AppendFrame(nil, p9wire.Twalk, 1, new(p9wire.Encoder).U32(0).U32(1).U16(1).Str("big").Bytes()),
		p9wire.AppendFrame(nil, p9wire.Tlopen, 1, new(p9wire.Encoder).U32(1).U32(p9wire.ORdonly).Bytes())} {
		if _, err := exchange(t, c, raw); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutinesBefore := runtime.NumGoroutine()

	// Up to 2000 reads of 1 MiB (2 GiB of answers), none read.
	sent := 0
	c.SetWriteDeadline(time.Now().Add(3 * time.Second))
	for i := range 2000 {
		tag := uint16(i % 60000)
		if _, err := c.Write(p9wire.AppendFrame(nil, p9wire.Tread, tag, new(p9wire.Encoder).U32(1).U64(0).U32(1<<20-11).Bytes())); err != nil {
			break
		}
		sent++
	}
	if sent == 2000 {
		t.Errorf("the server read all 2000 requests of a client that reads no answers")
	}
	time.Sleep(200 * time.Millisecond)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("requests sent before the server stopped reading: %d; heap growth %d MiB; goroutines %d -> %d",
		sent, growth>>20, goroutinesBefore, runtime.NumGoroutine())
	if limit := int64(DefaultHandlers+8) << 20; growth > limit {
		t.Errorf("heap grew by %d MiB (limit %d MiB)", growth>>20, limit>>20)
	}
	if g := runtime.NumGoroutine() - goroutinesBefore; g > DefaultHandlers+4 {
		t.Errorf("%d more goroutines", g)
	}
	// Another client is served meanwhile.
	other := ts.dial(t, 0)
	if _, err := other.Walk(0, 1, "file"); err != nil {
		t.Errorf("other connection: %v", err)
	}
	c.Close() // the server drops the stalled connection
}

// A slow request (here a copy-up of 64 MiB, which the reader began to
// handle itself) does not hold up a request sent after it on the same
// connection.
func TestSlowRequestDoesNotStallOthers(t *testing.T) {
	ts := startServer(t, serverOptions{bigLowerFile: 64 << 20})
	c := ts.dial(t, 0)
	_, err := c.Walk(0, 1, "big")
	must(t, err)
	slow, err := c.Start(p9wire.Tlopen, new(p9wire.Encoder).U32(1).U32(p9wire.OWronly).Bytes())
	must(t, err)
	answeredWhileSlow(t, c, slow, "the copy-up")
}

// answeredWhileSlow checks that a Tgetattr sent on c after the request
// slow (which does what) is answered while slow is still running, then
// waits for slow to succeed.
func answeredWhileSlow(t *testing.T, c *p9wire.Client, slow *p9wire.Call, what string) {
	t.Helper()
	slowDone := make(chan error, 1)
	go func() {
		_, err := slow.Wait()
		slowDone <- err
	}()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if _, err := c.Getattr(0, p9wire.GetattrBasic); err != nil {
		t.Fatal(err)
	}
	fast := time.Since(start)
	select {
	case err := <-slowDone:
		t.Errorf("getattr (%v) was answered only after %s (err %v)", fast, what, err)
	default:
		t.Logf("getattr answered in %v while %s went on", fast, what)
		must(t, <-slowDone)
	}
}

// A change to an object already in the upper is handled by the reader
// itself (quick), but not a size change of a metadata-only copy, which
// copies the file's data in: a request sent after it is answered while
// that copy goes on.
func TestSizeChangeOfMetacopyDoesNotStallOthers(t *testing.T) {
	ts := startServer(t, serverOptions{bigLowerFile: 64 << 20, metacopy: true})
	c := ts.dial(t, 0)
	_, err := c.Walk(0, 1, "big")
	must(t, err)
	// A metadata-only copy-up: "big" is in the upper from now on.
	must(t, c.Setattr(1, p9wire.SetAttr{Valid: p9wire.SetattrMode, Mode: 0o600}))
	slow, err := c.Start(p9wire.Tsetattr, new(p9wire.Encoder).U32(1).U32(p9wire.SetattrSize).
		U32(0).U32(0).U32(0).U64(64<<20-1).U64(0).U64(0).U64(0).U64(0).Bytes())
	must(t, err)
	answeredWhileSlow(t, c, slow, "the data copy")
	a, err := c.Getattr(1, p9wire.GetattrBasic)
	must(t, err)
	if a.Size != 64<<20-1 || a.Mode&0o7777 != 0o600 {
		t.Errorf("big after chmod and truncate: size %d mode %o", a.Size, a.Mode&0o7777)
	}
}
