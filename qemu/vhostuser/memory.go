package vhostuser

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// region is one mapped region of guest RAM.
type region struct {
	gpa  uint64 // guest physical address of data[0]
	uva  uint64 // QEMU's address of data[0] (ring addresses are in these)
	data []byte // the mapping, len = the region's size
	mmap []byte // what to munmap (the mapping starts at offset 0 of the fd)
}

// memory is a guest memory table. It is immutable once built; a new
// SET_MEM_TABLE builds a new one and the old one is unmapped when no
// request holds it (Device.memMu).
type memory struct {
	regions []region
}

var errAddr = errors.New("address outside guest memory")

// maxRegions bounds the table (QEMU sends at most 8 without
// CONFIGURE_MEM_SLOTS).
const maxRegions = 8

// mapMemory maps the regions of a SET_MEM_TABLE payload from their
// descriptors (one per region, in order). It takes ownership of none of
// fds: the caller closes them (a mapping outlives its descriptor).
func mapMemory(payload []byte, fds []int) (*memory, error) {
	if len(payload) < memTableHeader {
		return nil, fmt.Errorf("memory table: %d bytes", len(payload))
	}
	n := int(binary.LittleEndian.Uint32(payload))
	if n == 0 || n > maxRegions || len(payload) < memTableHeader+n*memRegionSize || len(fds) != n {
		return nil, fmt.Errorf("memory table: %d regions, %d bytes, %d descriptors", n, len(payload), len(fds))
	}
	m := &memory{}
	for i := 0; i < n; i++ {
		p := payload[memTableHeader+i*memRegionSize:]
		gpa := binary.LittleEndian.Uint64(p)
		size := binary.LittleEndian.Uint64(p[8:])
		uva := binary.LittleEndian.Uint64(p[16:])
		off := binary.LittleEndian.Uint64(p[24:])
		if size == 0 || size > 1<<40 || off > 1<<40 || gpa+size < gpa || uva+size < uva {
			m.unmap()
			return nil, fmt.Errorf("memory region %d: gpa %#x size %#x offset %#x", i, gpa, size, off)
		}
		b, err := unix.Mmap(fds[i], 0, int(off+size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			m.unmap()
			return nil, fmt.Errorf("map memory region %d (%#x bytes at offset %#x): %w", i, size, off, err)
		}
		m.regions = append(m.regions, region{gpa: gpa, uva: uva, data: b[off : off+size : off+size], mmap: b})
	}
	return m, nil
}

// unmap releases the mappings. No slice into them may be used after.
func (m *memory) unmap() {
	if m == nil {
		return
	}
	for _, r := range m.regions {
		_ = unix.Munmap(r.mmap)
	}
	m.regions = nil
}

// guest returns the n bytes at guest physical address addr as slices of
// the mappings (several when they cross from one region into an
// adjacent one), appended to iov.
func (m *memory) guest(iov [][]byte, addr, n uint64) ([][]byte, error) {
	if addr+n < addr {
		return iov, errAddr
	}
	for n > 0 {
		found := false
		for i := range m.regions {
			r := &m.regions[i]
			if addr >= r.gpa && addr-r.gpa < uint64(len(r.data)) {
				off := addr - r.gpa
				k := min(n, uint64(len(r.data))-off)
				iov = appendMerged(iov, r.data[off:off+k:off+k])
				addr += k
				n -= k
				found = true
				break
			}
		}
		if !found {
			return iov, errAddr
		}
	}
	return iov, nil
}

// appendMerged appends b to iov, extending the last buffer instead when
// b directly follows it in this process's memory (guest pages that are
// adjacent in guest RAM): fewer, larger buffers let a READ be one
// preadv and a WRITE's data be used in place (go-fuse copies data that
// arrives split).
func appendMerged(iov [][]byte, b []byte) [][]byte {
	if k := len(iov); k > 0 && len(iov[k-1]) > 0 && len(b) > 0 {
		last := iov[k-1]
		if unsafe.Add(unsafe.Pointer(&last[0]), len(last)) == unsafe.Pointer(&b[0]) {
			iov[k-1] = unsafe.Slice(&last[0], len(last)+len(b))
			return iov
		}
	}
	return append(iov, b)
}

// guestOne returns the n bytes at guest physical address addr as one
// slice; they must lie in one region (ring parts, indirect tables).
func (m *memory) guestOne(addr, n uint64) ([]byte, error) {
	for i := range m.regions {
		r := &m.regions[i]
		if addr >= r.gpa && addr-r.gpa <= uint64(len(r.data)) && n <= uint64(len(r.data))-(addr-r.gpa) {
			off := addr - r.gpa
			return r.data[off : off+n : off+n], nil
		}
	}
	return nil, errAddr
}

// qemu returns the n bytes at QEMU's address addr (SET_VRING_ADDR gives
// QEMU's addresses) as one slice.
func (m *memory) qemu(addr, n uint64) ([]byte, error) {
	for i := range m.regions {
		r := &m.regions[i]
		if addr >= r.uva && addr-r.uva <= uint64(len(r.data)) && n <= uint64(len(r.data))-(addr-r.uva) {
			off := addr - r.uva
			return r.data[off : off+n : off+n], nil
		}
	}
	return nil, errAddr
}
