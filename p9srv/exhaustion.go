package p9srv

import (
	"time"

	"github.com/union9p/union9p/p9srv/wire"
	"golang.org/x/sys/unix"
)

// noteExhaustion logs, at most once a second, that the host ran out of
// descriptors or memory for a request. The request itself fails with
// that errno; nothing else changes, and the server serves on as soon as
// the host has room again.
func (s *Server) noteExhaustion(c *conn, typ uint8, e unix.Errno) {
	now := time.Now().UnixNano()
	last := s.lastExhaustion.Load()
	if now-last < int64(time.Second) || !s.lastExhaustion.CompareAndSwap(last, now) {
		return
	}
	c.log.Warn("host out of resources for a request; it failed, the server goes on",
		"type", wire.MessageName(typ), "errno", e.Error())
}
