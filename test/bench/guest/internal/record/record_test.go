package record

import (
	"testing"
)

func TestRoundTrip(t *testing.T) {
	r := Result{Workload: "tar", Side: "union9p", Round: 2, Seconds: 12.5}
	for _, tc := range []struct {
		line string
		want Record
	}{
		{FormatResult(r) + "\r\n", Record{Kind: KindResult, Result: r}},
		{FormatInfo("mount-union9p", "union9p:bench /mnt/union9p 9p rw,\nmsize=512000"), Record{Kind: KindInfo, Key: "mount-union9p", Text: "union9p:bench /mnt/union9p 9p rw, msize=512000"}},
		{FormatError("tar: exit status 1"), Record{Kind: KindError, Text: "tar: exit status 1"}},
		{"\x1b[0m" + FormatDone(), Record{Kind: KindDone}},
	} {
		got, ok, err := Parse(tc.line)
		if !ok || err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v, %v; want %+v", tc.line, got, ok, err, tc.want)
		}
	}
}

func TestNotARecord(t *testing.T) {
	for _, l := range []string{"", "[    1.234] 9pnet: Installing 9P2000 support", "guestbench:done"} {
		if _, ok, err := Parse(l); ok || err != nil {
			t.Errorf("Parse(%q): ok %v, err %v; want not a record", l, ok, err)
		}
	}
}

func TestMalformed(t *testing.T) {
	for _, l := range []string{
		Prefix + "result tar union9p x 1.0",
		Prefix + "result tar union9p 1",
		Prefix + "result tar union9p 1 fast",
		Prefix + "info",
		Prefix + "bogus",
	} {
		if _, ok, err := Parse(l); !ok || err == nil {
			t.Errorf("Parse(%q): ok %v, err %v; want a malformed record", l, ok, err)
		}
	}
}

func TestWordFields(t *testing.T) {
	got, _, err := Parse(FormatResult(Result{Workload: "dd write", Side: "", Round: 0, Seconds: 1}))
	if err != nil || got.Result.Workload != "dd_write" || got.Result.Side != "-" {
		t.Errorf("got %+v, %v", got, err)
	}
}
