package qemu

import (
	"slices"
	"testing"
)

func TestVirtiofsMemArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		size string
	}{
		{[]string{"qemu"}, "128M"},
		{[]string{"qemu", "-m", "1024"}, "1024M"},
		{[]string{"qemu", "-m", "2G"}, "2G"},
		{[]string{"qemu", "-m", "size=512M,slots=2,maxmem=4G"}, "512M"},
		{[]string{"qemu", "-m", "512", "-m", "768"}, "768M"},
	} {
		got, err := VirtiofsMemArgs(c.args)
		want := []string{"-object", "memory-backend-memfd,id=union9p-mem,size=" + c.size + ",share=on", "-machine", "memory-backend=union9p-mem"}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%q: %q, %v; want %q", c.args, got, err, want)
		}
	}
	// A command with its own backend is left alone.
	if got, err := VirtiofsMemArgs([]string{"qemu", "-object", "memory-backend-file,id=m,share=on,size=1G,mem-path=/dev/shm/x"}); got != nil || err != nil {
		t.Errorf("own backend: %q, %v", got, err)
	}
}
