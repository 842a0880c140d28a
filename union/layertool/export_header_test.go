package layertool

import (
	"archive/tar"
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// archiveTarHeader is what archive/tar's Writer writes for h: the header
// blocks only (the data is not written).
func archiveTarHeader(h *tar.Header) ([]byte, error) {
	var buf bytes.Buffer
	err := tar.NewWriter(&buf).WriteHeader(h)
	return buf.Bytes(), err
}

// randomHeader makes a header of the kinds export writes, with fields
// drawn from around the limits of the ustar fields, so that some are
// plain and some are not.
func randomHeader(rng *rand.Rand) *tar.Header {
	comp := func() string {
		names := []string{"a", "f0001", ".wh.gone", ".wh..wh..opq", "d000", strings.Repeat("n", 1+rng.IntN(60)), "é", "sp ace", "PaxHeaders.0"}
		return names[rng.IntN(len(names))]
	}
	var p string
	for i := rng.IntN(4); i >= 0; i-- {
		if p != "" {
			p += "/"
		}
		p += comp()
	}
	if rng.IntN(20) == 0 {
		p = "."
	}
	h := &tar.Header{Name: p, Format: tar.FormatPAX}
	types := []byte{tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo}
	h.Typeflag = types[rng.IntN(len(types))]
	switch h.Typeflag {
	case tar.TypeDir:
		h.Name += "/"
	case tar.TypeSymlink, tar.TypeLink:
		h.Linkname = comp() + "/" + comp()
		if rng.IntN(8) == 0 {
			h.Linkname = strings.Repeat("../", 30) + comp()
		}
	case tar.TypeChar, tar.TypeBlock:
		h.Devmajor, h.Devminor = int64(rng.IntN(300)), int64(rng.IntN(1<<22))
	case tar.TypeReg:
		sizes := []int64{0, 1, 511, 512, 8192, 1<<33 - 1, 1 << 33, 1 << 40}
		h.Size = sizes[rng.IntN(len(sizes))]
	}
	modes := []int64{0o644, 0o755, 0o4755, 0o7777, 0}
	h.Mode = modes[rng.IntN(len(modes))]
	ids := []int{0, 1000, 65534, 1<<21 - 1, 1 << 21, 1 << 31}
	h.Uid, h.Gid = ids[rng.IntN(len(ids))], ids[rng.IntN(len(ids))]
	secs := []int64{0, 1, 1_700_000_000, 1<<33 - 1, 1 << 33, -1}
	nsecs := []int{0, 0, 1, 100, 123456789, 999999999, 500000000}
	h.ModTime = time.Unix(secs[rng.IntN(len(secs))], int64(nsecs[rng.IntN(len(nsecs))])).UTC()
	if rng.IntN(10) == 0 {
		h.PAXRecords = map[string]string{"SCHILY.xattr.user.k": "v\x00w"}
	}
	return h
}

// appendHeader writes, for every header, the bytes archive/tar writes,
// whether it encodes the header itself or hands it over.
func TestAppendHeaderMatchesArchiveTar(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 16))
	plain := 0
	const n = 20000
	for i := 0; i < n; i++ {
		h := randomHeader(rng)
		want, werr := archiveTarHeader(h)
		if _, ok := appendPlainHeader(nil, h); ok {
			plain++
		}
		got, err := appendHeader([]byte("prefix"), h)
		if (err != nil) != (werr != nil) {
			t.Fatalf("%+v: error %v, archive/tar: %v", h, err, werr)
		}
		if err != nil {
			continue
		}
		if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("%+v:\n got %q\nwant %q", h, got[min(len(got), len("prefix")):], want)
		}
	}
	// Both paths must have been taken often for the comparison to mean
	// anything.
	if plain < n/10 || plain > n*9/10 {
		t.Fatalf("%d of %d headers were plain", plain, n)
	}
}

// The headers export writes for an ordinary upper are all plain.
func TestAppendPlainHeaderCommonCases(t *testing.T) {
	mt := time.Unix(1_700_000_000, 123456789)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeReg, Name: "d000/f0001", Mode: 0o644, Size: 8192, ModTime: mt, Format: tar.FormatPAX},
		{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755, ModTime: mt, Format: tar.FormatPAX},
		{Typeflag: tar.TypeReg, Name: "d/.wh.gone", Mode: 0o644, ModTime: mt.Truncate(time.Second), Format: tar.FormatPAX},
		{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "../x", Mode: 0o777, ModTime: mt, Format: tar.FormatPAX},
		{Typeflag: tar.TypeLink, Name: "hard", Linkname: "d/new", ModTime: mt, Format: tar.FormatPAX},
	} {
		got, ok := appendPlainHeader(nil, h)
		if !ok {
			t.Errorf("%s: not encoded as plain", h.Name)
			continue
		}
		want, err := archiveTarHeader(h)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: differs from archive/tar (%v)", h.Name, err)
		}
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	w.n++
	return 0, errors.New("disk full")
}

// tarOut keeps bytes in order across flushes, gives room for a whole
// small file, and reports the first write error to every later call.
func TestTarOut(t *testing.T) {
	var dst bytes.Buffer
	o := newTarOut(&dst, 1024)
	var want []byte
	for i := 0; i < 50; i++ {
		p := bytes.Repeat([]byte{byte(i)}, i*37%700)
		o.Write(p)
		want = append(want, p...)
		r := o.room(300)
		if len(r) < 300 {
			t.Fatalf("room(300) gave %d bytes", len(r))
		}
		copy(r, "xyz")
		o.commit(3)
		want = append(want, "xyz"...)
		o.zeros(i * 53 % 2000)
		want = append(want, make([]byte, i*53%2000)...)
	}
	if err := o.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.Bytes(), want) {
		t.Fatalf("tarOut wrote %d bytes, want %d (or they differ)", dst.Len(), len(want))
	}

	fw := &failWriter{}
	o = newTarOut(fw, 512)
	if _, err := o.Write(make([]byte, 2000)); err == nil {
		t.Fatal("Write after a failed flush gave no error")
	}
	o.zeros(5000)
	if err := o.Flush(); err == nil || fw.n != 1 {
		t.Fatalf("Flush: %v after %d writes; want the first error and no write after it", err, fw.n)
	}
}
