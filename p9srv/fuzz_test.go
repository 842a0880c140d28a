package p9srv

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/union9p/union9p/test/p9wire"
	"github.com/union9p/union9p/union"
)

// FuzzFrame feeds arbitrary bytes after a valid version and attach to one
// connection of a server: it must never crash or hang, whatever it
// answers. Run with go test -fuzz FuzzFrame ./p9srv.
func FuzzFrame(f *testing.F) {
	enc := func() *p9wire.Encoder { return new(p9wire.Encoder) }
	seeds := [][]byte{
		p9wire.AppendFrame(nil, p9wire.Twalk, 1, enc().U32(0).U32(1).U16(1).Str("dir").Bytes()),
		p9wire.AppendFrame(nil, p9wire.Twalk, 1, enc().U32(0).U32(1).U16(1).Str("..").Bytes()),
		p9wire.AppendFrame(nil, p9wire.Tgetattr, 1, enc().U32(0).U64(0x7ff).Bytes()),
		p9wire.AppendFrame(nil, p9wire.Tlcreate, 1, enc().U32(0).Str("f").U32(2).U32(0o4755).U32(0).Bytes()),
		p9wire.AppendFrame(nil, p9wire.Tsetattr, 1, enc().U32(0).U32(1).U32(0o6777).U32(0).U32(0).U64(0).U64(0).U64(0).U64(0).U64(0).Bytes()),
		p9wire.AppendFrame(nil, p9wire.Tgetlock, 1, enc().U32(0).U8(1).U64(0).U64(0).U32(1).Str("c").Bytes()),
		p9wire.AppendFrame(nil, p9wire.Txattrwalk, 1, enc().U32(0).U32(2).Str("user.x").Bytes()),
		p9wire.AppendFrame(nil, p9wire.Treaddir, 1, enc().U32(0).U64(0).U32(100).Bytes()),
		p9wire.AppendFrame(nil, p9wire.Tattach, 1, enc().U32(3).U32(p9wire.NoFid).Str("x").Str("dir").U32(p9wire.NoUID).Bytes()),
		p9wire.AppendFrame(nil, p9wire.Tversion, p9wire.NoTag, enc().U32(1).Str("9P2000.L.Google.9").Bytes()),
		{3, 0, 0, 0, 1, 2, 3},
		{0xff, 0xff, 0xff, 0xff, 0xff},
	}
	for _, s := range seeds {
		f.Add(s)
	}

	dir := f.TempDir()
	lower, upper, work := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{filepath.Join(lower, "dir"), upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	u, err := union.Open(union.Options{Lowers: []string{lower}, Upper: upper, Workdir: work})
	if err != nil {
		f.Fatal(err)
	}
	defer u.Close()
	srv, err := New(Config{Union: u})
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			srv.ServeConn(server)
			close(done)
		}()
		client.SetDeadline(time.Now().Add(2 * time.Second))
		client.Write(versionFrame())
		p9wire.ReadFrame(client, 1<<20)
		client.Write(attachFrame(0, 0))
		p9wire.ReadFrame(client, 1<<20)
		go func() {
			// Drain answers so the server never blocks writing.
			for {
				if _, err := p9wire.ReadFrame(client, 1<<30); err != nil {
					return
				}
			}
		}()
		client.Write(data)
		time.Sleep(time.Millisecond)
		client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("server did not end the connection")
		}
	})
}
