package p9srv

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/union9p/union9p/test/p9wire"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestTraceLogsEachMessage(t *testing.T) {
	u, err := union.Open(union.Options{Lowers: []string{t.TempDir()}})
	must(t, err)
	defer u.Close()
	var logs lockedBuffer
	srv, err := New(Config{Union: u, Trace: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	must(t, err)
	client, server := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(server) }()
	c, err := p9wire.NewClient(client, 65536)
	must(t, err)
	_, err = c.Attach(0, "", "", 0)
	must(t, err)
	_, err = c.Walk(0, 1, "missing")
	wantErrno(t, "walk", err, unix.ENOENT)
	c.Close()
	must(t, <-done)
	out := logs.String()
	for _, want := range []string{"type=Tversion", "type=Rversion", "type=Tattach", "type=Rattach", "type=Twalk", "errno=\"no such file or directory\""} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %s:\n%s", want, out)
		}
	}
}
