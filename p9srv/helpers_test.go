package p9srv

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/union9p/union9p/test/p9wire"
	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// testServer is a Server on a unix socket over real directories: one lower
// layer (with a few files) and an upper, or the lower alone (readOnly).
type testServer struct {
	srv         *Server
	sock        string
	lower       string
	upper, work string
	lowerBefore map[string]string
}

type serverOptions struct {
	readOnly             bool
	squashUID, squashGID *uint32
	maxMsize             uint32
	maxFids              int
	bigLowerFile         int64 // size of lower file "big", if any
	metacopy             bool  // union.Options.Metacopy
	logger               *slog.Logger
}

func startServer(t *testing.T, o serverOptions) *testServer {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests run as root (ownership, mknod, trusted xattrs)")
	}
	dir := t.TempDir()
	ts := &testServer{lower: filepath.Join(dir, "lower"), sock: filepath.Join(dir, "sock")}
	must(t, os.MkdirAll(filepath.Join(ts.lower, "dir", "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(ts.lower, "file"), []byte("lower data\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(ts.lower, "dir", "a"), []byte("a"), 0o644))
	must(t, os.WriteFile(filepath.Join(ts.lower, "dir", "b"), []byte("b"), 0o644))
	must(t, os.Symlink("file", filepath.Join(ts.lower, "link")))
	if o.bigLowerFile > 0 {
		f, err := os.Create(filepath.Join(ts.lower, "big"))
		must(t, err)
		chunk := make([]byte, 1<<20)
		for i := range chunk {
			chunk[i] = byte(i)
		}
		for n := int64(0); n < o.bigLowerFile; n += int64(len(chunk)) {
			_, err = f.Write(chunk)
			must(t, err)
		}
		must(t, f.Close())
	}
	opts := union.Options{Lowers: []string{ts.lower}, Metacopy: o.metacopy}
	if o.metacopy {
		opts.RedirectDir = union.RedirectOn // metacopy needs it, as in overlayfs
	}
	if !o.readOnly {
		ts.upper, ts.work = filepath.Join(dir, "upper"), filepath.Join(dir, "work")
		must(t, os.Mkdir(ts.upper, 0o755))
		must(t, os.Mkdir(ts.work, 0o755))
		opts.Upper, opts.Workdir = ts.upper, ts.work
	}
	ts.lowerBefore = snapshot(t, ts.lower)
	u, err := union.Open(opts)
	must(t, err)
	ts.srv, err = New(Config{Union: u, SquashUID: o.squashUID, SquashGID: o.squashGID, MaxMsize: o.maxMsize, MaxFids: o.maxFids, Logger: o.logger})
	must(t, err)
	ln, err := Listen("unix:" + ts.sock)
	must(t, err)
	served := make(chan error, 1)
	go func() { served <- ts.srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		u.Close()
		if after := snapshot(t, ts.lower); !equalMaps(ts.lowerBefore, after) {
			t.Errorf("lower layer changed:\nbefore %v\nafter  %v", ts.lowerBefore, after)
		}
	})
	return ts
}

// dial connects a client and attaches fid 0 as uid.
func (ts *testServer) dial(t *testing.T, uid uint32) *p9wire.Client {
	t.Helper()
	c, err := p9wire.Dial("unix", ts.sock, 512<<10)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	_, err = c.Attach(0, "", "", uid)
	must(t, err)
	return c
}

// snapshot describes every entry under dir: mode, owner, size, data, mtime.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fi.Mode().String() + " " + itoa(st.Uid) + ":" + itoa(st.Gid) + " " + itoa(uint32(st.Size)) + " " + itoa(uint32(st.Mtim.Nsec)) + itoa(uint32(st.Mtim.Sec))
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			desc += " " + string(b)
		}
		m[p] = desc
		return nil
	})
	must(t, err)
	return m
}

func itoa(v uint32) string {
	const digits = "0123456789"
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{digits[v%10]}, b...)
	}
	return string(b)
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErrno fails unless err is the errno want.
func wantErrno(t *testing.T, what string, err error, want unix.Errno) {
	t.Helper()
	var got unix.Errno
	if !errors.As(err, &got) || got != want {
		t.Errorf("%s: got error %v, want %v (%d)", what, err, want.Error(), int(want))
	}
}

// rawConn is a connection for hostile frames.
func (ts *testServer) rawConn(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", ts.sock)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}
