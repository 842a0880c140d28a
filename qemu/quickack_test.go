package qemu

import (
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestPassedTCPAcksAtOnce: a loopback TCP connection handed over by a
// courier, whose other end sends each request in two writes with Nagle's
// algorithm on (as QEMU's user network does), is answered without the
// 40 ms delayed-ACK stall per request. Without TCP_QUICKACK on the
// server's end, 20 such requests take about 800 ms here.
func TestPassedTCPAcksAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pass")
	ln, err := ListenPassed(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tl, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	slirp, err := net.DialTCP("tcp4", nil, tl.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer slirp.Close()
	if err := slirp.SetNoDelay(false); err != nil { // Nagle on, as libslirp's end
		t.Fatal(err)
	}
	courier, err := tl.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	f, err := courier.File()
	courier.Close()
	if err != nil {
		t.Fatal(err)
	}
	accepted := acceptOne(ln)
	if err := PassFD(path, int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var srv net.Conn
	select {
	case srv = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
	}
	if srv == nil {
		t.Fatal("Accept failed")
	}
	defer srv.Close()

	// The server: read a 4119-byte request (a 4 KiB Twrite), answer 11
	// bytes (an Rwrite).
	go func() {
		req := make([]byte, 4119)
		for {
			if _, err := io.ReadFull(srv, req); err != nil {
				return
			}
			if _, err := srv.Write(make([]byte, 11)); err != nil {
				return
			}
		}
	}()
	const rounds = 20
	reply := make([]byte, 11)
	start := time.Now()
	for range rounds {
		// The first 1460 bytes go at once; Nagle holds the rest until
		// they are acknowledged.
		if _, err := slirp.Write(make([]byte, 1460)); err != nil {
			t.Fatal(err)
		}
		if _, err := slirp.Write(make([]byte, 4119-1460)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(slirp, reply); err != nil {
			t.Fatal(err)
		}
	}
	// 40 ms a request would be 800 ms; allow a loaded machine ten times
	// what an unloaded one takes (a few ms in all).
	if d := time.Since(start); d > rounds*40*time.Millisecond/2 {
		t.Fatalf("%d split requests took %v (%v each): the server's end delays its ACKs", rounds, d, d/rounds)
	}
}
