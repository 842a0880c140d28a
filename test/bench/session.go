package main

import (
	"sync/atomic"

	"github.com/union9p/union9p/test/p9wire"
)

// rootFid is the fid every session attaches as.
const rootFid = 0

// ioHeader is P9_IOHDRSZ: the bytes of a Tread/Twrite/Treaddir frame that
// are not data. The kernel asks for msize-ioHeader bytes per request.
const ioHeader = 24

// session is one client connection, attached, with fids handed out the
// way the kernel does (the client picks them, never reusing a live one).
type session struct {
	c       *p9wire.Client
	nextFid atomic.Uint32
}

// openSession dials srv and attaches.
func openSession(srv *server, msize uint32) (*session, error) {
	c, err := srv.dial(msize)
	if err != nil {
		return nil, err
	}
	s := &session{c: c}
	s.nextFid.Store(rootFid + 1)
	return s, nil
}

// fid returns an unused fid number.
func (s *session) fid() uint32 { return s.nextFid.Add(1) }

// chunk is how many data bytes one Tread/Twrite/Treaddir carries.
func (s *session) chunk() uint32 { return s.c.Msize() - ioHeader }

// walk walks from fid to a new fid along names, one Twalk per name as
// v9fs does for a path lookup, and clunks the intermediate fids.
func (s *session) walk(from uint32, names ...string) (uint32, error) {
	cur := from
	if len(names) == 0 {
		nf := s.fid()
		_, err := s.c.Walk(from, nf)
		return nf, err
	}
	for _, n := range names {
		nf := s.fid()
		_, err := s.c.Walk(cur, nf, n)
		if cur != from {
			s.c.Clunk(cur)
		}
		if err != nil {
			return 0, err
		}
		cur = nf
	}
	return cur, nil
}

func (s *session) close() error { return s.c.Close() }
