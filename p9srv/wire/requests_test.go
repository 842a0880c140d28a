package wire

import (
	"errors"
	"testing"
)

func TestDecodeRequestFields(t *testing.T) {
	body := new(Encoder).U32(7).Str("f").U32(ORdwr).U32(0o4755).U32(1001).Bytes()
	r, err := DecodeRequest(Tlcreate, body)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := r.(*TlcreateReq)
	if !ok || c.Fid != 7 || c.Name != "f" || c.Flags != ORdwr || c.Mode != 0o4755 || c.GID != 1001 {
		t.Errorf("decoded %#v", r)
	}
	if TypeOf(r) != Tlcreate {
		t.Errorf("TypeOf %d", TypeOf(r))
	}
	w, err := DecodeRequest(Twrite, new(Encoder).U32(1).U64(9).U32(3).Raw([]byte("abc")).Bytes())
	if err != nil || string(w.(*TwriteReq).Data) != "abc" || w.(*TwriteReq).Offset != 9 {
		t.Errorf("twrite %#v %v", w, err)
	}
}

func TestDecodeRequestRefusesBadBodies(t *testing.T) {
	for _, tt := range []struct {
		name string
		typ  uint8
		body []byte
		want error
	}{
		{"short walk", Twalk, new(Encoder).U32(0).U32(1).U16(2).Str("a").Bytes(), ErrShortBody},
		{"too many names", Twalk, new(Encoder).U32(0).U32(1).U16(17).Bytes(), ErrBadField},
		{"write count beyond body", Twrite, new(Encoder).U32(1).U64(0).U32(100).Raw([]byte("x")).Bytes(), ErrShortBody},
		{"string beyond body", Tattach, new(Encoder).U32(0).U32(NoFid).U16(500).Bytes(), ErrShortBody},
		{"response type", Rwalk, nil, ErrUnknownType},
		{"extension type", 128, nil, ErrUnknownType},
		{"empty getlock", Tgetlock, []byte{0, 0, 0, 0, 1}, ErrShortBody},
	} {
		if _, err := DecodeRequest(tt.typ, tt.body); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

// FuzzDecodeRequest: no body of any type may panic the decoder, and what
// decodes has the type asked for.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(Twalk, new(Encoder).U32(0).U32(1).U16(1).Str("dir").Bytes())
	f.Add(Tlcreate, new(Encoder).U32(0).Str("f").U32(2).U32(0o4755).U32(0).Bytes())
	f.Add(Twrite, new(Encoder).U32(1).U64(0).U32(3).Raw([]byte("abc")).Bytes())
	f.Add(Tsetattr, new(Encoder).U32(0).U32(1).U32(0o6777).U32(0).U32(0).U64(0).U64(0).U64(0).U64(0).U64(0).Bytes())
	f.Add(Tgetlock, new(Encoder).U32(0).U8(1).U64(0).U64(0).U32(1).Str("c").Bytes())
	f.Add(Tversion, new(Encoder).U32(8192).Str("9P2000.L").Bytes())
	f.Fuzz(func(t *testing.T, typ uint8, body []byte) {
		r, err := DecodeRequest(typ, body)
		if err != nil {
			if r != nil {
				t.Fatal("request and error")
			}
			return
		}
		if TypeOf(r) != typ {
			t.Fatalf("type %d decoded as %d", typ, TypeOf(r))
		}
		if w, ok := r.(*TwalkReq); ok && len(w.Names) > MaxWalkNames {
			t.Fatalf("%d names", len(w.Names))
		}
	})
}
