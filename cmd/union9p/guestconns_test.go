package main

import (
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection: the guest's
// and the one union9p qemu accepted, plus a copy of the accepted one as
// the server holds it after the hand-over.
func tcpPair(t *testing.T) (guest, accepted net.Conn, server *os.File) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	guest, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	accepted, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	server, err = accepted.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { guest.Close(); accepted.Close(); server.Close() })
	return guest, accepted, server
}

// The server's copy of a kept connection reads end-of-file once union9p
// qemu's guest is gone, though the guest itself never closed.
func TestGuestConnsEndServerSide(t *testing.T) {
	_, accepted, server := tcpPair(t)
	var g guestConns
	g.keep(accepted)
	done := make(chan error, 1)
	go func() {
		srv, err := net.FileConn(server)
		if err != nil {
			done <- err
			return
		}
		defer srv.Close()
		srv.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = srv.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	g.shutdownAll()
	if err := <-done; err != io.EOF {
		t.Fatalf("server read after shutdownAll: %v, want EOF", err)
	}
}

// Connections already ended are let go at the next keep, so a guest that
// reconnects again and again does not pile up descriptors here.
func TestGuestConnsDropsEnded(t *testing.T) {
	var g guestConns
	guest1, acc1, _ := tcpPair(t)
	g.keep(acc1)
	guest1.Close()
	time.Sleep(50 * time.Millisecond)
	_, acc2, _ := tcpPair(t)
	g.keep(acc2)
	if len(g.conns) != 1 || g.conns[0] != acc2 {
		t.Fatalf("kept %d connections after the first guest hung up, want only the live one", len(g.conns))
	}
}
