package p9srv

// Requests in flight and Tflush.
//
// Every request read (Tflush included, Tversion excepted) is in inflight
// under its tag until its response is written. Tflush is answered as the
// protocol says: a Tflush naming a tag that is not in flight, or its own
// tag, is answered at once; otherwise the flushed request is still
// answered as usual (handlers are not interrupted), and the Rflush follows
// right after its response, under the same write lock, so the client
// always sees the flushed response (if any) before Rflush.

// track enters r in the table; it reports false when r's tag is in flight
// already (a client reusing a tag it has not got back).
func (c *conn) track(r *request) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, busy := c.inflight[r.tag]; busy {
		return false
	}
	c.inflight[r.tag] = r
	return true
}

// finish removes r from the table just before its response is written
// and returns the Tflushes that waited for it. Called under writeMu.
func (c *conn) finish(r *request) []*request {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight[r.tag] == r {
		delete(c.inflight, r.tag)
	}
	if len(c.inflight) == 0 {
		c.drained.Broadcast()
	}
	f := r.flushers
	r.flushers = nil
	return f
}

// flush handles Tflush r of oldTag.
func (c *conn) flush(r *request, oldTag uint16) {
	c.mu.Lock()
	if target := c.inflight[oldTag]; target != nil && target != r {
		target.flushers = append(target.flushers, r)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.startResponse(r)
	c.answer(r)
}

// waitIdle waits until no request is in flight.
func (c *conn) waitIdle() {
	c.mu.Lock()
	for len(c.inflight) > 0 {
		c.drained.Wait()
	}
	c.mu.Unlock()
}
