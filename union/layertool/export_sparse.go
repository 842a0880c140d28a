package layertool

import (
	"archive/tar"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Sparse files are exported in the PAX "GNU sparse 1.0" format, which GNU
// tar, bsdtar and Go's tar reader (hence our import) turn back into files
// with holes. Go's tar writer cannot write it (it drops GNU.sparse.*
// records), so this file writes such an entry's blocks itself (export
// writes every entry whole, so it starts at a block boundary).
//
// The entry is:
//
//	a PAX header ('x') with GNU.sparse.major=1, GNU.sparse.minor=0,
//	  GNU.sparse.name (the real path), GNU.sparse.realsize (the file
//	  size), the nanosecond mtime and the xattrs, records sorted;
//	a ustar header ('0') named GNUSparseFile.0/BASENAME whose size is
//	  that of the data area;
//	the data area: the sparse map (the number of data segments, then the
//	  offset and length of each, decimal, one a line) padded to 512
//	  bytes, then the segments' bytes back to back, padded to 512.
//
// A file that ends in a hole gets a last segment of length 0 at its size,
// as GNU tar writes it. The holes are found with SEEK_DATA/SEEK_HOLE, so
// the map is the file system's: the same file gives the same bytes.

// segment is a run of data in a sparse file.
type segment struct{ off, n int64 }

// dataSegments returns the data runs of the file open at fd of the given
// size, or nil when it has no hole (or the file system cannot say).
func dataSegments(fd int, size int64, blocks int64) ([]segment, error) {
	if size == 0 || blocks*512 >= size {
		return nil, nil // every byte allocated: no hole worth a map
	}
	var segs []segment
	var off int64
	for off < size {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break // only a hole from off to the end
		}
		if err == unix.EINVAL || err == unix.EOPNOTSUPP {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		h = min(h, size)
		if h > d {
			segs = append(segs, segment{d, h - d})
		}
		off = h
	}
	if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
		return nil, err
	}
	if len(segs) == 1 && segs[0] == (segment{0, size}) {
		return nil, nil
	}
	if len(segs) == 0 || segs[len(segs)-1].off+segs[len(segs)-1].n < size {
		segs = append(segs, segment{size, 0}) // ends in a hole
	}
	return segs, nil
}

// writeSparse writes h (a regular file of h.Size bytes, read from f) as a
// GNU sparse 1.0 entry with the data segments segs.
func (e *exporter) writeSparse(h *tar.Header, f int, p string, segs []segment) error {
	var sm strings.Builder
	fmt.Fprintf(&sm, "%d\n", len(segs))
	var data int64
	for _, s := range segs {
		fmt.Fprintf(&sm, "%d\n%d\n", s.off, s.n)
		data += s.n
	}
	mapBytes := padBlock([]byte(sm.String()))

	recs := map[string]string{
		"GNU.sparse.major":    "1",
		"GNU.sparse.minor":    "0",
		"GNU.sparse.name":     h.Name,
		"GNU.sparse.realsize": strconv.FormatInt(h.Size, 10),
	}
	for k, v := range h.PAXRecords {
		recs[k] = v
	}
	area := int64(len(mapBytes)) + data
	if area > 1<<33-1 {
		recs["size"] = strconv.FormatInt(area, 10) // beyond the octal field
	}
	if ns := h.ModTime.Nanosecond(); ns != 0 || h.ModTime.Unix() < 0 {
		recs["mtime"] = strings.TrimRight(fmt.Sprintf("%d.%09d", h.ModTime.Unix(), ns), "0")
	}
	const maxOctal7 = 1<<21 - 1
	if h.Uid > maxOctal7 {
		recs["uid"] = strconv.Itoa(h.Uid)
	}
	if h.Gid > maxOctal7 {
		recs["gid"] = strconv.Itoa(h.Gid)
	}
	base := p[strings.LastIndexByte(p, '/')+1:]
	pax := paxRecords(recs)
	xh := ustarHeader(shortName("PaxHeaders.0/", base), tar.TypeXHeader, 0o644, 0, 0, int64(len(pax)), h.ModTime.Unix())
	fh := ustarHeader(shortName("GNUSparseFile.0/", base), tar.TypeReg, h.Mode, h.Uid, h.Gid, area, h.ModTime.Unix())
	for _, b := range [][]byte{xh, padBlock(pax), fh, mapBytes} {
		if _, err := e.out.Write(b); err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
	}
	for _, s := range segs {
		if s.n == 0 {
			continue
		}
		if _, err := unix.Seek(f, s.off, io.SeekStart); err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
		n, err := copyFd(e.out, f, s.n, e.buf)
		if err == nil && n != s.n {
			err = fmt.Errorf("file shrank while exported (%d of %d bytes at %d)", n, s.n, s.off)
		}
		if err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
	}
	if pad := (512 - data%512) % 512; pad > 0 {
		if _, err := e.out.Write(make([]byte, pad)); err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
	}
	e.stats.Entries++
	e.stats.Bytes += h.Size
	report(e.opts.Progress, 1, h.Size)
	return nil
}

// shortName is dir+base cut to fit ustar's 100-byte name field (readers
// take the real name from GNU.sparse.name).
func shortName(dir, base string) string {
	n := dir + base
	if len(n) > 99 {
		n = n[:99]
	}
	return n
}

func padBlock(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// paxRecords encodes records as "LEN KEY=VALUE\n", sorted by key (LEN
// counts the whole record, its own digits included).
func paxRecords(recs map[string]string) []byte {
	keys := make([]string, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []byte
	for _, k := range keys {
		rest := len(k) + len(recs[k]) + 3 // ' ', '=', '\n'
		n := rest + len(strconv.Itoa(rest))
		if len(strconv.Itoa(n)) != len(strconv.Itoa(rest)) {
			n++
		}
		out = append(out, fmt.Sprintf("%d %s=%s\n", n, k, recs[k])...)
	}
	return out
}

// ustarHeader builds one POSIX ustar header block. Numeric fields that do
// not fit their octal field are left at zero: the PAX records carry them.
func ustarHeader(name string, typ byte, mode int64, uid, gid int, size, mtime int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	octal(b[100:108], mode&0o7777)
	octal(b[108:116], int64(uid))
	octal(b[116:124], int64(gid))
	octal(b[124:136], size)
	octal(b[136:148], mtime)
	b[156] = typ
	copy(b[257:265], "ustar\x0000")
	octal(b[329:337], 0) // devmajor
	octal(b[337:345], 0) // devminor
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	octal(b[148:155], sum) // six digits, NUL; the space stays
	b[155] = ' '
	return b
}

// octal writes v as zero-padded octal digits followed by a NUL into f, or
// zeros when v does not fit.
func octal(f []byte, v int64) {
	s := strconv.FormatInt(v, 8)
	if v < 0 || len(s) > len(f)-1 {
		s = "0"
	}
	s = strings.Repeat("0", len(f)-1-len(s)) + s
	copy(f, s)
	f[len(f)-1] = 0
}
