package qemu

import (
	"bytes"
	"compress/gzip"
	"io"
	"strconv"
	"testing"
)

// cpioEntry is one entry read back from a newc archive.
type cpioEntry struct {
	name       string
	mode, rdev uint32
	data       string
}

// readCpio parses a newc archive, checking the magic and the padding.
func readCpio(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	field := func(i int) uint32 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("header field %d at %d: %v", i, off, err)
		}
		return uint32(v)
	}
	for {
		if string(b[off:off+6]) != "070701" {
			t.Fatalf("bad magic at %d: %q", off, b[off:off+6])
		}
		size, nameSize := int(field(6)), int(field(11))
		name := string(b[off+110 : off+110+nameSize-1])
		if b[off+110+nameSize-1] != 0 {
			t.Fatalf("%s: name not NUL-terminated", name)
		}
		dataOff := (off + 110 + nameSize + 3) &^ 3
		e := cpioEntry{name: name, mode: field(1), rdev: field(9)<<8 | field(10), data: string(b[dataOff : dataOff+size])}
		off = (dataOff + size + 3) &^ 3
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, e)
	}
}

func TestInitramfsArchive(t *testing.T) {
	r := NewInitramfs()
	r.File("init", 0o755, []byte("#!/bin/sh\n"))
	r.File("a/b/odd", 0o644, []byte("12345"))
	r.Symlink("sbin/mount.union9p", "/bin/union9p")
	var buf bytes.Buffer
	if _, err := r.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	entries := readCpio(t, raw)
	index := map[string]cpioEntry{}
	pos := map[string]int{}
	for i, e := range entries {
		index[e.name] = e
		pos[e.name] = i
	}
	for _, tc := range []struct {
		name string
		mode uint32
		data string
	}{
		{"init", 0o100755, "#!/bin/sh\n"},
		{"a", 0o040755, ""},
		{"a/b", 0o040755, ""},
		{"a/b/odd", 0o100644, "12345"},
		{"sbin/mount.union9p", 0o120777, "/bin/union9p"},
		{"tmp", 0o041777, ""},
	} {
		e, ok := index[tc.name]
		if !ok {
			t.Errorf("%s missing", tc.name)
			continue
		}
		if e.mode != tc.mode || e.data != tc.data {
			t.Errorf("%s: mode %o data %q, want %o %q", tc.name, e.mode, e.data, tc.mode, tc.data)
		}
	}
	if c := index["dev/console"]; c.mode != 0o020600 || c.rdev != 5<<8|1 {
		t.Errorf("dev/console: mode %o rdev %x, want char 5:1", c.mode, c.rdev)
	}
	if pos["a"] > pos["a/b"] || pos["a/b"] > pos["a/b/odd"] {
		t.Errorf("parents must come before children: %v", pos)
	}
}
