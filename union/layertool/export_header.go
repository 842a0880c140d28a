package layertool

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"path"
	"strconv"
	"strings"
)

// Tar headers. archive/tar's Writer spends per entry about what the rest
// of export's own work costs (perf over 100k small files: a map of PAX
// records per header, sorting it, fmt, path.Join, several allocations).
// Almost every header export writes is plain: an ASCII name and link
// target of at most 100 bytes, numbers that fit the octal fields, no
// xattrs, a nanosecond mtime or none. appendHeader encodes those itself,
// byte for byte as archive/tar encodes them in FormatPAX (a test compares
// the two over random headers), and lets archive/tar encode every other
// header, so the output stays what it was.

// appendHeader appends the header blocks of h (Format PAX, as export
// makes them) to dst: a PAX extended header when archive/tar would write
// one, then the ustar header. The entry's data is the caller's.
func appendHeader(dst []byte, h *tar.Header) ([]byte, error) {
	if b, ok := appendPlainHeader(dst, h); ok {
		return b, nil
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(h); err != nil {
		return dst, err
	}
	// Only the header blocks were written; tw expects the data, which the
	// caller writes itself, so tw is dropped unclosed.
	return append(dst, buf.Bytes()...), nil
}

// ustar header fields (offset, length).
const (
	hdrName     = 0
	hdrMode     = 100
	hdrUID      = 108
	hdrGID      = 116
	hdrSize     = 124
	hdrMtime    = 136
	hdrChksum   = 148
	hdrType     = 156
	hdrLinkname = 157
	hdrMagic    = 257 // "ustar\x00" then version "00"
	hdrDevmajor = 329
	hdrDevminor = 337
)

// appendPlainHeader is appendHeader for plain headers; ok false (dst
// unchanged) for any other.
func appendPlainHeader(dst []byte, h *tar.Header) ([]byte, bool) {
	if h.Format != tar.FormatPAX || len(h.PAXRecords) > 0 || len(h.Xattrs) > 0 || h.Uname != "" || h.Gname != "" ||
		!h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || h.ModTime.IsZero() {
		return dst, false
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if strings.HasSuffix(h.Name, "/") {
			return dst, false // archive/tar refuses it: let it say so
		}
	case tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	default:
		return dst, false
	}
	sec, nsec := h.ModTime.Unix(), h.ModTime.Nanosecond()
	if h.Name == "" || !plainString(h.Name) || !plainString(h.Linkname) ||
		!fitsOctal(8, h.Mode) || !fitsOctal(8, int64(h.Uid)) || !fitsOctal(8, int64(h.Gid)) ||
		!fitsOctal(12, h.Size) || !fitsOctal(12, sec) ||
		!fitsOctal(8, h.Devmajor) || !fitsOctal(8, h.Devminor) {
		return dst, false
	}
	if nsec != 0 {
		// The nanoseconds go in a PAX record: archive/tar's extended
		// header, named DIR/PaxHeaders.0/BASE, with all numbers 0 but the
		// records' size.
		var rec []byte
		var num [32]byte
		t := strconv.AppendInt(num[:0], sec, 10)
		t = append(t, '.')
		for d := 100_000_000; d > 0; d /= 10 {
			t = append(t, byte('0'+nsec/d%10))
		}
		rec = appendPAXRecord(rec, "mtime", string(bytes.TrimRight(t, "0")))
		dir, file := path.Split(h.Name)
		xname := strings.TrimRight(truncate(path.Join(dir, "PaxHeaders.0", file), 100), "/")
		var b []byte
		dst, b = appendBlock(dst)
		copy(b[hdrName:hdrName+100], xname)
		putOctal(b[hdrMode:hdrMode+8], 0)
		putOctal(b[hdrUID:hdrUID+8], 0)
		putOctal(b[hdrGID:hdrGID+8], 0)
		putOctal(b[hdrSize:hdrSize+12], int64(len(rec)))
		putOctal(b[hdrMtime:hdrMtime+12], 0)
		b[hdrType] = tar.TypeXHeader
		finishBlock(b)
		dst = append(dst, rec...)
		dst = append(dst, make([]byte, blockPad(int64(len(rec))))...)
	}
	return appendMainHeader(dst, h, sec), true
}

// appendMainHeader appends the ustar block of a plain header.
func appendMainHeader(dst []byte, h *tar.Header, mtime int64) []byte {
	dst, b := appendBlock(dst)
	copy(b[hdrName:hdrName+100], h.Name)
	copy(b[hdrLinkname:hdrLinkname+100], h.Linkname)
	putOctal(b[hdrMode:hdrMode+8], h.Mode)
	putOctal(b[hdrUID:hdrUID+8], int64(h.Uid))
	putOctal(b[hdrGID:hdrGID+8], int64(h.Gid))
	putOctal(b[hdrSize:hdrSize+12], h.Size)
	putOctal(b[hdrMtime:hdrMtime+12], mtime)
	putOctal(b[hdrDevmajor:hdrDevmajor+8], h.Devmajor)
	putOctal(b[hdrDevminor:hdrDevminor+8], h.Devminor)
	b[hdrType] = h.Typeflag
	finishBlock(b)
	return dst
}

// appendBlock appends a zeroed 512-byte block to dst and returns it.
func appendBlock(dst []byte) ([]byte, []byte) {
	n := len(dst)
	dst = append(dst, make([]byte, 512)...)
	return dst, dst[n : n+512]
}

// finishBlock sets the ustar magic and the checksum of a header block.
func finishBlock(b []byte) {
	copy(b[hdrMagic:], "ustar\x0000")
	// The sum of the bytes, the checksum field counted as spaces: eight
	// bytes at a time, in four 16-bit lanes (64 words of at most 2*255
	// per lane cannot overflow one).
	copy(b[hdrChksum:hdrChksum+8], "        ")
	var lanes uint64
	for i := 0; i < 512; i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		lanes += w&0x00ff00ff00ff00ff + w>>8&0x00ff00ff00ff00ff
	}
	sum := lanes&0xffff + lanes>>16&0xffff + lanes>>32&0xffff + lanes>>48
	putOctal(b[hdrChksum:hdrChksum+7], int64(sum))
	b[hdrChksum+7] = ' '
}

// plainString reports whether s fits a 100-byte name field as it is:
// ASCII without NUL.
func plainString(s string) bool {
	if len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 || s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// fitsOctal reports whether x fits a field of n bytes as octal digits and
// a NUL.
func fitsOctal(n int, x int64) bool { return x >= 0 && x < 1<<(uint(n-1)*3) }

// putOctal writes x (which fits) as zero-padded octal digits and a NUL.
func putOctal(f []byte, x int64) {
	f[len(f)-1] = 0
	for i := len(f) - 2; i >= 0; i-- {
		f[i] = byte('0' + x&7)
		x >>= 3
	}
}

// appendPAXRecord appends "LEN KEY=VALUE\n", LEN counting the whole
// record, its own digits included.
func appendPAXRecord(dst []byte, k, v string) []byte {
	size := len(k) + len(v) + 3 // ' ', '=', '\n'
	size += len(strconv.Itoa(size))
	if len(strconv.Itoa(size))+len(k)+len(v)+3 != size {
		size++
	}
	dst = strconv.AppendInt(dst, int64(size), 10)
	dst = append(dst, ' ')
	dst = append(dst, k...)
	dst = append(dst, '=')
	dst = append(dst, v...)
	return append(dst, '\n')
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// blockPad is the padding after n bytes of entry data.
func blockPad(n int64) int64 { return (512 - n%512) % 512 }
