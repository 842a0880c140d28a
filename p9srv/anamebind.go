package p9srv

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"

	"github.com/union9p/union9p/p9srv/wire"
	"github.com/union9p/union9p/union/tenant"
	"golang.org/x/sys/unix"
)

// A connection on a trusted listener (ServeTenant with AnameTenant) names
// its tenant in the aname of its first Tattach. A connection serves one
// union (its Export), so the tenant must be known before the engine takes
// the connection: until then the connection is answered here, with the
// same answers the engine would give — Tversion negotiated as the engine
// does, Tattach of a name that cannot be served refused (EINVAL for an
// invalid name, ENOENT for an unknown tenant), Tflush answered, anything
// else EBADF (no fid exists yet). Once a Tattach names a tenant that is
// acquired, the last Tversion and that Tattach are replayed to the engine,
// which answers the Tattach; its answer to the replayed Tversion, already
// given here, is dropped. The connection then belongs to that tenant: the
// engine ignores the aname of its later attaches, so a client that wants
// another tenant opens another connection (as Linux does per mount).

// serveAnameConn binds nc to the tenant its first good Tattach names and
// serves it.
func (s *Server) serveAnameConn(ctx context.Context, nc net.Conn, ts *Tenants) {
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	name, h, rw, err := s.bindByAname(ctx, nc, ts)
	stop()
	if err != nil {
		s.log.Debug("connection ended before attaching a tenant", "err", err)
		nc.Close()
		return
	}
	defer ts.leave(name, nc)
	defer h.Release()
	s.ServeConnExport(rw, Export{Union: h.Union(), SquashUID: ts.SquashUID, SquashGID: ts.SquashGID})
}

// bindByAname answers nc until a Tattach names a tenant it can acquire;
// it returns that tenant (entered in ts) and the stream the engine is to
// serve.
func (s *Server) bindByAname(ctx context.Context, nc net.Conn, ts *Tenants) (string, *tenant.Handle, io.ReadWriteCloser, error) {
	var version []byte // the last Tversion frame, replayed to the engine
	reply := func(typ uint8, tag uint16, body []byte) error {
		return wire.WriteFrame(nc, typ, tag, body)
	}
	for {
		f, err := wire.ReadFrame(nc, s.maxMsize)
		if err != nil {
			return "", nil, nil, err
		}
		msg, derr := wire.DecodeRequest(f.Type, f.Body)
		switch m := msg.(type) {
		case *wire.TversionReq:
			if derr != nil {
				return "", nil, nil, errProtocol
			}
			msize := min(m.Msize, s.maxMsize)
			v := wire.Version
			if !strings.HasPrefix(m.Version, wire.Version) || msize < minClientMsize {
				v = "unknown"
			}
			version = wire.AppendFrame(nil, f.Type, f.Tag, f.Body)
			if err := reply(wire.Rversion, f.Tag, wire.NewEncoder(nil).U32(msize).Str(v).Bytes()); err != nil {
				return "", nil, nil, err
			}
			continue
		case *wire.TflushReq:
			if derr == nil {
				if err := reply(wire.Rflush, f.Tag, nil); err != nil {
					return "", nil, nil, err
				}
				continue
			}
		case *wire.TattachReq:
			if derr != nil || m.Afid != wire.NoFid {
				break // EINVAL below
			}
			name := m.Aname
			if err := tenant.ValidName(name); err != nil {
				s.log.Info("attach refused: aname is not a tenant name", "err", err)
				if err := reply(wire.Rlerror, f.Tag, wire.NewEncoder(nil).U32(uint32(unix.EINVAL)).Bytes()); err != nil {
					return "", nil, nil, err
				}
				continue
			}
			ts.enter(name, nc)
			h, err := ts.Registry.Acquire(ctx, name)
			if err != nil {
				ts.leave(name, nc)
				s.log.Info("attach refused: tenant not available", "tenant", name, "err", err)
				if err := reply(wire.Rlerror, f.Tag, wire.NewEncoder(nil).U32(uint32(tenantErrno(err))).Bytes()); err != nil {
					return "", nil, nil, err
				}
				continue
			}
			prefix := append(version, wire.AppendFrame(nil, f.Type, f.Tag, f.Body)...)
			rc := &replayConn{Conn: nc, r: io.MultiReader(bytes.NewReader(prefix), nc)}
			rc.dropWrites.Store(version != nil)
			return name, h, rc, nil
		}
		e := unix.EBADF
		if derr != nil || f.Type == wire.Tattach {
			e = unix.EINVAL
		}
		if err := reply(wire.Rlerror, f.Tag, wire.NewEncoder(nil).U32(uint32(e)).Bytes()); err != nil {
			return "", nil, nil, err
		}
	}
}

// replayConn is a connection whose first bytes read are a replay of
// frames already read, and whose first write (the engine's answer to the
// replayed Tversion, already answered) is dropped when dropWrites is set.
// The engine writes each response with one Write, so one Write is one
// frame.
type replayConn struct {
	net.Conn
	r          io.Reader
	dropWrites atomic.Bool
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *replayConn) Write(p []byte) (int, error) {
	if c.dropWrites.CompareAndSwap(true, false) {
		return len(p), nil
	}
	return c.Conn.Write(p)
}
