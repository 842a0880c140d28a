package p9srv

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenSpecs(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := Listen("unix:" + sock)
	must(t, err)
	if _, err := Listen("unix:" + sock); err == nil {
		t.Error("second listener on a live socket succeeded")
	}
	ln.Close()
	// A stale socket file (nobody listening) is replaced.
	stale, err := net.Listen("unix", sock)
	must(t, err)
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	ln, err = Listen("unix:" + sock)
	must(t, err)
	ln.Close()

	tcp, err := Listen("tcp:127.0.0.1:0")
	must(t, err)
	defer tcp.Close()
	f, err := tcp.(*net.TCPListener).File()
	must(t, err)
	defer f.Close()
	inherited, err := Listen(fmt.Sprintf("fd:%d", f.Fd()))
	must(t, err)
	if inherited.Addr().String() != tcp.Addr().String() {
		t.Errorf("fd listener on %v, want %v", inherited.Addr(), tcp.Addr())
	}
	inherited.Close()

	for spec, mention := range map[string]string{
		"udp:1.2.3.4:5": "unknown scheme", "unix:": "no socket path", "vsock:x": "bad vsock port",
		"fd:-1": "bad descriptor", "stdio": "not a listener", "tcp:": "no address",
	} {
		if _, err := Listen(spec); err == nil || !strings.Contains(err.Error(), mention) {
			t.Errorf("Listen(%q) = %v, want an error about %q", spec, err, mention)
		}
	}
	// vsock works only where the host has it; either way no panic, and a
	// failure says vsock.
	if ln, err := Listen("vsock:52000"); err == nil {
		ln.Close()
	} else if !strings.Contains(err.Error(), "vsock") {
		t.Errorf("vsock error does not say vsock: %v", err)
	}
}

func TestSystemdListeners(t *testing.T) {
	t.Setenv("LISTEN_FDS", "1")
	t.Setenv("LISTEN_PID", "1") // another process's sockets
	lns, err := SystemdListeners()
	if err != nil || lns != nil {
		t.Errorf("sockets of another pid taken: %v %v", lns, err)
	}
	t.Setenv("LISTEN_PID", fmt.Sprint(os.Getpid()))
	t.Setenv("LISTEN_FDS", "zero")
	if _, err := SystemdListeners(); err == nil {
		t.Error("bad LISTEN_FDS accepted")
	}
}
