package qemu

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSplitMountOptions(t *testing.T) {
	flags, rest := SplitMountOptions([]string{"ro", "nosuid", "cache=mmap", "", "noatime", "atime", "access=user", "defaults"})
	if want := uintptr(unix.MS_RDONLY | unix.MS_NOSUID); flags != want {
		t.Errorf("flags %#x, want %#x", flags, want)
	}
	if strings.Join(rest, ",") != "cache=mmap,access=user" {
		t.Errorf("rest %v", rest)
	}
}

func TestNinePData(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []string
		want string
	}{
		{"defaults", nil, "trans=fd,rfdno=7,wfdno=7,version=9p2000.L,msize=524288"},
		{"msize given", []string{"msize=65536", "cache=mmap"}, "trans=fd,rfdno=7,wfdno=7,version=9p2000.L,msize=65536,cache=mmap"},
		{"version given", []string{"version=9p2000.u"}, "trans=fd,rfdno=7,wfdno=7,msize=524288,version=9p2000.u"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NinePData(7, tc.opts)
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"trans=virtio", "rfdno=0", "wfdno=1", "port=564"} {
		if _, err := NinePData(7, []string{bad}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestSerialArgs(t *testing.T) {
	if SerialArgs(nil) != nil {
		t.Error("no ports should add no arguments")
	}
	got := strings.Join(SerialArgs([]SerialPort{{Name: "union9p.a", Socket: "/tmp/x,y.sock"}, {Name: "union9p.b", Socket: "/b"}}), " ")
	want := "-device virtio-serial-pci,id=union9p-vser" +
		" -chardev socket,id=union9p0,path=/tmp/x,,y.sock,reconnect=1 -device virtserialport,bus=union9p-vser.0,nr=1,chardev=union9p0,name=union9p.a" +
		" -chardev socket,id=union9p1,path=/b,reconnect=1 -device virtserialport,bus=union9p-vser.0,nr=2,chardev=union9p1,name=union9p.b"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
