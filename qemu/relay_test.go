package qemu

import (
	"io"
	"os"
	"testing"
	"time"
)

// TestRelay stands a socketpair in for the virtio-serial port: bytes go
// both ways, and the relay returns nil once the "kernel" end closes.
func TestRelay(t *testing.T) {
	relayEnd, kernelEnd, err := Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	portGuest, portHost, err := Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	defer relayEnd.Close()
	defer portGuest.Close()
	defer portHost.Close()

	done := make(chan error, 1)
	go func() { done <- Relay(portGuest, relayEnd) }()

	roundTrip := func(from, to *os.File, msg string) {
		t.Helper()
		if _, err := from.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(to, buf); err != nil || string(buf) != msg {
			t.Fatalf("got %q, %v; want %q", buf, err, msg)
		}
	}
	roundTrip(kernelEnd, portHost, "Tversion")
	roundTrip(portHost, kernelEnd, "Rversion")

	kernelEnd.Close() // unmount
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("relay after unmount: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("relay still running after the kernel end closed")
	}
}

// TestRelayPortGone: when the host end goes away, the relay reports it.
func TestRelayPortGone(t *testing.T) {
	relayEnd, kernelEnd, _ := Socketpair()
	portGuest, portHost, _ := Socketpair()
	defer relayEnd.Close()
	defer kernelEnd.Close()
	defer portGuest.Close()
	done := make(chan error, 1)
	go func() { done <- Relay(portGuest, relayEnd) }()
	portHost.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("relay returned nil after the port closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("relay still running after the port closed")
	}
}
