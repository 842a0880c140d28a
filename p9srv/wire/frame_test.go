package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	body := new(Encoder).U32(7).Str("name").U64(1 << 40).U8(3).Bytes()
	var buf bytes.Buffer
	if err := WriteFrame(&buf, Twalk, 42, body); err != nil {
		t.Fatal(err)
	}
	if got := buf.Bytes()[:4]; !bytes.Equal(got, []byte{byte(HeaderSize + len(body)), 0, 0, 0}) {
		t.Errorf("size field %v", got)
	}
	f, err := ReadFrame(&buf, 1024)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(f.Body)
	if f.Type != Twalk || f.Tag != 42 || d.U32() != 7 || d.Str() != "name" || d.U64() != 1<<40 || d.U8() != 3 || d.Err() != nil {
		t.Errorf("decoded %+v", f)
	}
	if d.U32(); d.Err() != ErrShortBody {
		t.Errorf("reading past the end: %v", d.Err())
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{3, 0, 0, 0, 1, 2, 3}), 1024); err == nil {
		t.Error("size below header accepted")
	}
	big := AppendFrame(nil, Tread, 1, make([]byte, 2000))
	if _, err := ReadFrame(bytes.NewReader(big), 1024); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("oversized frame: %v", err)
	}
	// StartFrame/FinishFrame build the same bytes as AppendFrame.
	e := NewEncoder(StartFrame(nil, Rgetattr, 9))
	a := Attr{Valid: GetattrBasic, Mode: 0o100644, Size: 11, QID: QID{Path: 5}}
	e.Attr(&a)
	got := FinishFrame(e.Bytes())
	want := AppendFrame(nil, Rgetattr, 9, new(Encoder).Attr(&a).Bytes())
	if !bytes.Equal(got, want) {
		t.Errorf("StartFrame/FinishFrame %x, want %x", got, want)
	}
	if back := NewDecoder(want[HeaderSize:]).Attr(); back != a {
		t.Errorf("attr round trip %+v", back)
	}
}
