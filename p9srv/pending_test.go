package p9srv

import (
	"net"
	"testing"
	"time"
)

func TestPendingSeesUnreadBytes(t *testing.T) {
	a, b, err := socketPair()
	must(t, err)
	defer a.Close()
	defer b.Close()
	pending := pendingFunc(b)
	if pending() {
		t.Error("pending with nothing sent")
	}
	_, err = a.Write([]byte("x"))
	must(t, err)
	deadline := time.Now().Add(time.Second)
	for !pending() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !pending() {
		t.Error("not pending after a byte was sent")
	}
	// Without a descriptor it cannot tell, and says so.
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if !pendingFunc(p1)() {
		t.Error("a net.Pipe end must report pending")
	}
}

func socketPair() (net.Conn, net.Conn, error) {
	ln, err := net.Listen("unix", "@p9srv-pending-"+time.Now().Format("150405.000000000"))
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	a, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	b, err := ln.Accept()
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}
