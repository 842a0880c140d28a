package tenant

import (
	"fmt"
	"math"
	"sync"

	"golang.org/x/sys/unix"
)

// Usage is what a tenant's upper layer holds, counted as Measure counts it.
type Usage struct {
	// Bytes is the apparent size (st_size) summed over distinct inodes.
	Bytes int64 `json:"bytes"`
	// Inodes is the number of distinct inodes, the upper's root included.
	Inodes int64 `json:"inodes"`
}

// Quota limits a tenant's Usage. A zero field means no limit.
type Quota struct {
	Bytes  int64 `json:"bytes"`
	Inodes int64 `json:"inodes"`
}

// Ledger keeps a tenant's usage against its quota. Every method is safe for
// concurrent use; Charge checks and adds under one lock, so two charges that
// each fit but together do not can never both succeed.
//
// The callers (the union's write paths, in the follow-up) charge before they
// change the upper and release what they did not use or what they freed:
// a Charge that fails leaves nothing to undo.
type Ledger struct {
	mu    sync.Mutex
	used  Usage
	quota Quota
}

// NewLedger returns a ledger that starts at used (a recount) with quota q.
func NewLedger(used Usage, q Quota) *Ledger {
	return &Ledger{used: used, quota: q}
}

// Charge adds d to the usage if the result stays within the quota in both
// bytes and inodes (reaching the quota exactly is allowed). Otherwise it
// changes nothing and returns an error that wraps unix.EDQUOT, the errno a
// client must receive. Negative amounts are refused with EINVAL: a charge
// never frees (use Release).
func (l *Ledger) Charge(d Usage) error {
	if d.Bytes < 0 || d.Inodes < 0 {
		return fmt.Errorf("quota charge of %d bytes, %d inodes: %w", d.Bytes, d.Inodes, unix.EINVAL)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// Compared as "room left" rather than "used + d", which could
	// overflow; room is negative when the quota was lowered below usage.
	if q := l.quota.Bytes; q > 0 && d.Bytes > 0 && d.Bytes > q-l.used.Bytes {
		return fmt.Errorf("quota: %d bytes asked, %d of %d used: %w", d.Bytes, l.used.Bytes, q, unix.EDQUOT)
	}
	if q := l.quota.Inodes; q > 0 && d.Inodes > 0 && d.Inodes > q-l.used.Inodes {
		return fmt.Errorf("quota: %d inodes asked, %d of %d used: %w", d.Inodes, l.used.Inodes, q, unix.EDQUOT)
	}
	l.used.Bytes = satAdd(l.used.Bytes, d.Bytes)
	l.used.Inodes = satAdd(l.used.Inodes, d.Inodes)
	return nil
}

// Release subtracts d (non-negative amounts; negative fields are ignored).
// Usage never goes below zero: releasing more than was charged is a
// caller's bug that a recount corrects, and is clamped rather than let
// a negative usage grant more than the quota.
func (l *Ledger) Release(d Usage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.used.Bytes = max(0, l.used.Bytes-max(0, d.Bytes))
	l.used.Inodes = max(0, l.used.Inodes-max(0, d.Inodes))
}

// Adjust adds d, which may be negative, without checking the quota. It is
// for changes that have already happened and cannot be refused, such as a
// directory's size growing when an entry was added to it.
func (l *Ledger) Adjust(d Usage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.used.Bytes = max(0, satAdd(l.used.Bytes, d.Bytes))
	l.used.Inodes = max(0, satAdd(l.used.Inodes, d.Inodes))
}

// Used returns the current usage.
func (l *Ledger) Used() Usage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.used
}

// Quota returns the current quota.
func (l *Ledger) Quota() Quota {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.quota
}

// SetQuota replaces the quota. Usage above a lowered quota stays: further
// charges fail until enough is released.
func (l *Ledger) SetQuota(q Quota) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.quota = q
}

// Recounted replaces the usage with a fresh count (after a reset, or at
// start). The caller makes sure nothing charges meanwhile.
func (l *Ledger) Recounted(u Usage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.used = u
}

// satAdd adds without wrapping around.
func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	if b < 0 && a < math.MinInt64-b {
		return math.MinInt64
	}
	return a + b
}
