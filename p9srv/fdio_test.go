package p9srv

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/union9p/union9p/test/p9wire"
	"github.com/union9p/union9p/union"
)

// A connection is served on its own descriptor (fdConn), and served the
// same whether its reader waits in poll(2) (busy), in the poller (quiet
// for longer than spinWait) or, with several busy connections, in the
// poller while another waits in poll(2).
func TestFDConnWaitModes(t *testing.T) {
	ts := startServer(t, serverOptions{})
	c := ts.dial(t, 0)
	for round := range 3 {
		for range 50 {
			if _, err := c.Getattr(0, p9wire.GetattrBasic); err != nil {
				t.Fatalf("round %d, busy: %v", round, err)
			}
		}
		time.Sleep(3 * spinWait) // quiet: the reader waits in the poller
		if _, err := c.Walk(0, 1, "file"); err != nil {
			t.Fatalf("round %d, after a quiet spell: %v", round, err)
		}
		must(t, c.Clunk(1))
	}

	// Four connections at once (and a large read each, several writes of
	// the response when the socket buffer is smaller than it).
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for k := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cc, err := p9wire.Dial("unix", ts.sock, 1<<20)
			if err != nil {
				errs <- err
				return
			}
			defer cc.Close()
			if _, err := cc.Attach(0, "", "", 0); err != nil {
				errs <- err
				return
			}
			for i := range 200 {
				if _, err := cc.Statfs(0); err != nil {
					errs <- err
					return
				}
				if i%50 == k {
					time.Sleep(3 * spinWait)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Alone again (after sharedHold), the first connection still works.
	time.Sleep(sharedHold + spinWait)
	for range 20 {
		if _, err := c.Statfs(0); err != nil {
			t.Fatal(err)
		}
	}
}

// Large responses (several writes when the client reads slowly) arrive
// whole and in order.
func TestFDConnLargeResponses(t *testing.T) {
	ts := startServer(t, serverOptions{bigLowerFile: 4 << 20})
	c := openBig(t, ts)
	for off := uint64(0); off < 4<<20; {
		p, err := c.Read(1, off, 1<<20-24)
		must(t, err)
		if len(p) == 0 {
			t.Fatalf("read at %d: nothing", off)
		}
		for i, b := range p {
			if b != byte(off+uint64(i)) { // the file holds byte(offset)
				t.Fatalf("read at %d: wrong byte at %d", off, off+uint64(i))
			}
		}
		off += uint64(len(p))
	}
	// The same through the client's zero-copy read into one reused buffer.
	buf := make([]byte, 1<<20-24)
	for off := uint64(0); off < 4<<20; {
		n, err := c.ReadInto(1, off, buf)
		must(t, err)
		if n == 0 {
			t.Fatalf("read into at %d: nothing", off)
		}
		for i, b := range buf[:n] {
			if b != byte(off+uint64(i)) {
				t.Fatalf("read into at %d: wrong byte at %d", off, off+uint64(i))
			}
		}
		off += uint64(n)
	}
}

// closeClient on the connection given to ServeConn ends its service (as
// CloseTenant does it), though the server serves it on a descriptor of
// its own; the client sees the end.
func TestCloseClientEndsService(t *testing.T) {
	u, err := union.Open(union.Options{Lowers: []string{t.TempDir()}})
	must(t, err)
	defer u.Close()
	srv, err := New(Config{Union: u})
	must(t, err)
	dir := t.TempDir()
	ln, err := net.Listen("unix", dir+"/sock")
	must(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			accepted <- nc
		}
	}()
	cc, err := net.Dial("unix", dir+"/sock")
	must(t, err)
	nc := <-accepted
	served := make(chan error, 1)
	go func() { served <- srv.ServeConn(nc) }()
	c, err := p9wire.NewClient(cc, 65536)
	must(t, err)
	defer c.Close()
	_, err = c.Attach(0, "", "", 0)
	must(t, err)
	if _, ok := wrapped.Load(nc); !ok {
		t.Fatal("a unix socket is not served on its own descriptor")
	}
	must(t, closeClient(nc))
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("ServeConn still serving after closeClient")
	}
	if _, err := c.Statfs(0); err == nil {
		t.Error("the client was still answered after closeClient")
	}
	if _, ok := wrapped.Load(nc); ok {
		t.Error("the closed connection is still in the table")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	must(t, srv.Shutdown(ctx))
}

// Shutdown stops reading a connection whose reader waits in poll(2) or in
// the poller, and the client sees the end of the stream.
func TestFDConnShutdownWhileWaiting(t *testing.T) {
	for _, quiet := range []time.Duration{0, 3 * spinWait} {
		u, err := union.Open(union.Options{Lowers: []string{t.TempDir()}})
		must(t, err)
		srv, err := New(Config{Union: u})
		must(t, err)
		sock := t.TempDir() + "/sock"
		ln, err := Listen("unix:" + sock)
		must(t, err)
		served := make(chan error, 1)
		go func() { served <- srv.Serve(context.Background(), ln) }()
		nc, err := net.Dial("unix", sock)
		must(t, err)
		c, err := p9wire.NewClient(nc, 65536)
		must(t, err)
		_, err = c.Attach(0, "", "", 0)
		must(t, err)
		time.Sleep(quiet)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("quiet %v: shutdown: %v", quiet, err)
		}
		cancel()
		if d := time.Since(start); d > time.Second {
			t.Errorf("quiet %v: shutdown took %v", quiet, d)
		}
		<-served
		if _, err := c.Statfs(0); err == nil {
			t.Errorf("quiet %v: answered after shutdown", quiet)
		}
		c.Close()
		u.Close()
	}
}

// A response that must wait for room while the reader serves the
// connection with blocking reads (fdConn.blockingRead): the writer waits
// past the socket's send timeout and in the poller (which makes the
// socket non-blocking again under the reader), the client then drains
// everything whole and in order, and the connection goes on serving in
// either wait mode.
func TestFDConnWriterWaitsWhileReaderBlocks(t *testing.T) {
	ts := startServer(t, serverOptions{bigLowerFile: 12 << 20})
	c := openBig(t, ts)
	for round := range 3 {
		for range 20 { // busy: the reader takes the poll slot and blocks
			if _, err := c.Getattr(0, p9wire.GetattrBasic); err != nil {
				t.Fatalf("round %d, busy: %v", round, err)
			}
		}
		// Twelve 1 MiB reads sent at once: more than the send buffer (8
		// MiB, see Server.sizeSendBuffer), and nobody reads them for a
		// while.
		const count = 1<<20 - 24
		var calls []*p9wire.Call
		for k := range 12 {
			call, err := c.Start(p9wire.Tread, new(p9wire.Encoder).U32(1).U64(uint64(k*count)).U32(count).Bytes())
			must(t, err)
			calls = append(calls, call)
		}
		time.Sleep(10 * spinWait)
		for k, call := range calls {
			f, err := call.Wait()
			if err != nil {
				t.Fatalf("round %d, read %d: %v", round, k, err)
			}
			d := p9wire.NewDecoder(f.Body)
			n := d.U32()
			p := d.Rest()
			if d.Err() != nil || int(n) != count || len(p) != count {
				t.Fatalf("round %d, read %d: %d bytes (%v)", round, k, len(p), d.Err())
			}
			for i, b := range p {
				if off := k*count + i; b != byte(off) {
					t.Fatalf("round %d, read %d: wrong byte at %d", round, k, off)
				}
			}
		}
		if _, err := c.Walk(0, 2, "big"); err != nil {
			t.Fatalf("round %d, after the drained reads: %v", round, err)
		}
		must(t, c.Clunk(2))
	}
}

// openBig connects to ts at msize 1 MiB and opens its big lower file for
// reading as fid 1; the connection closes with the test.
func openBig(t *testing.T, ts *testServer) *p9wire.Client {
	t.Helper()
	c, err := p9wire.Dial("unix", ts.sock, 1<<20)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	_, err = c.Attach(0, "", "", 0)
	must(t, err)
	_, err = c.Walk(0, 1, "big")
	must(t, err)
	_, _, err = c.Lopen(1, p9wire.ORdonly)
	must(t, err)
	return c
}
