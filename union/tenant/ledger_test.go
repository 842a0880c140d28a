package tenant

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLedgerBoundary(t *testing.T) {
	l := NewLedger(Usage{Bytes: 100, Inodes: 1}, Quota{Bytes: 1000, Inodes: 10})
	if err := l.Charge(Usage{Bytes: 900, Inodes: 9}); err != nil {
		t.Fatalf("charge up to the quota exactly: %v", err)
	}
	if got := l.Used(); got != (Usage{1000, 10}) {
		t.Fatalf("used %+v, want 1000/10", got)
	}
	for _, d := range []Usage{{1, 0}, {0, 1}, {1, 1}} {
		err := l.Charge(d)
		if !errors.Is(err, unix.EDQUOT) {
			t.Fatalf("charge %+v past the quota: %v, want EDQUOT", d, err)
		}
	}
	if err := l.Charge(Usage{}); err != nil {
		t.Fatalf("empty charge at the quota: %v", err)
	}
	if got := l.Used(); got != (Usage{1000, 10}) {
		t.Fatalf("refused charges changed usage: %+v", got)
	}
	l.Release(Usage{Bytes: 1})
	if err := l.Charge(Usage{Bytes: 2}); !errors.Is(err, unix.EDQUOT) {
		t.Fatalf("2 bytes with 1 left: %v, want EDQUOT", err)
	}
	if err := l.Charge(Usage{Bytes: 1}); err != nil {
		t.Fatalf("1 byte with 1 left: %v", err)
	}
	// An inode charge that fits is refused as a whole when its bytes do not.
	l.Release(Usage{Inodes: 1})
	if err := l.Charge(Usage{Bytes: 5, Inodes: 1}); !errors.Is(err, unix.EDQUOT) {
		t.Fatalf("bytes over, inodes fit: %v, want EDQUOT", err)
	}
	if got := l.Used(); got != (Usage{1000, 9}) {
		t.Fatalf("half-applied charge: %+v, want 1000/9", got)
	}
}

func TestLedgerUnlimitedAndLowered(t *testing.T) {
	l := NewLedger(Usage{}, Quota{})
	if err := l.Charge(Usage{Bytes: 1 << 62, Inodes: 1 << 40}); err != nil {
		t.Fatalf("no quota: %v", err)
	}
	if err := l.Charge(Usage{Bytes: 1 << 62}); err != nil {
		t.Fatalf("no quota, large: %v", err)
	}
	l.SetQuota(Quota{Inodes: 5}) // bytes still unlimited
	if err := l.Charge(Usage{Bytes: 10}); err != nil {
		t.Fatalf("bytes unlimited: %v", err)
	}
	if err := l.Charge(Usage{Inodes: 1}); !errors.Is(err, unix.EDQUOT) {
		t.Fatalf("inodes above a lowered quota: %v, want EDQUOT", err)
	}
	if err := l.Charge(Usage{Bytes: -1}); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("negative charge: %v, want EINVAL", err)
	}
	l.Recounted(Usage{Bytes: 3, Inodes: 2})
	l.Release(Usage{Bytes: 10, Inodes: 10})
	if got := l.Used(); got != (Usage{}) {
		t.Fatalf("over-release: %+v, want clamped to zero", got)
	}
	l.Adjust(Usage{Bytes: 4096, Inodes: 0})
	l.Adjust(Usage{Bytes: -96})
	if got := l.Used(); got != (Usage{Bytes: 4000}) {
		t.Fatalf("adjust: %+v", got)
	}
}

// TestLedgerConcurrent charges from many goroutines at once: exactly as
// many single-inode charges as the quota allows succeed, and releases
// bring usage back to zero.
func TestLedgerConcurrent(t *testing.T) {
	const quota, workers, each = 1000, 16, 200
	l := NewLedger(Usage{}, Quota{Bytes: quota * 10, Inodes: quota})
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := l.Charge(Usage{Bytes: 10, Inodes: 1})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, unix.EDQUOT):
					refused.Add(1)
				default:
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != quota || refused.Load() != workers*each-quota {
		t.Fatalf("%d charges succeeded, %d refused; want %d and %d", ok.Load(), refused.Load(), quota, workers*each-quota)
	}
	if got := l.Used(); got != (Usage{quota * 10, quota}) {
		t.Fatalf("used %+v", got)
	}
	// Interleave releases and charges: the total never passes the quota
	// and ends where the arithmetic says.
	var charged atomic.Int64
	for range workers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range quota / workers {
				l.Release(Usage{Bytes: 10, Inodes: 1})
			}
		}()
		go func() {
			defer wg.Done()
			for range each {
				if l.Charge(Usage{Bytes: 10, Inodes: 1}) == nil {
					charged.Add(1)
				}
				if u := l.Used(); u.Inodes > quota {
					t.Errorf("usage %d above quota", u.Inodes)
				}
			}
		}()
	}
	wg.Wait()
	want := int64(quota) - int64(workers*(quota/workers)) + charged.Load()
	if got := l.Used(); got.Inodes != want || got.Bytes != want*10 {
		t.Fatalf("after interleaving: %+v, want %d inodes", got, want)
	}
}
