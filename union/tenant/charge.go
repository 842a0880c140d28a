package tenant

import "github.com/union9p/union9p/union"

// charger lets a tenant's union charge its Ledger (union.Options.Quota).
type charger struct{ l *Ledger }

var _ union.Quota = charger{}

func (c charger) Reserve(bytes, inodes int64) error {
	return c.l.Charge(Usage{Bytes: bytes, Inodes: inodes})
}

func (c charger) Release(bytes, inodes int64) {
	c.l.Release(Usage{Bytes: bytes, Inodes: inodes})
}

func (c charger) Adjust(bytes, inodes int64) {
	c.l.Adjust(Usage{Bytes: bytes, Inodes: inodes})
}
