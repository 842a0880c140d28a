package main

import (
	"strings"
	"syscall"
	"testing"
)

func TestMountHelperArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		argv string
		want string
	}{
		{"util-linux order", "mount.union9p base /mnt -o lowerdir=/a,upperdir=/u,workdir=/w", "mount.union9p mount -o lowerdir=/a,upperdir=/u,workdir=/w base /mnt"},
		{"busybox with -n", "mount.union9p -n base /mnt -o lowerdir=/a", "mount.union9p mount -o lowerdir=/a base /mnt"},
		{"fake and type", "mount.union9p base /mnt -sfv -o lowerdir=/a -t union9p", "mount.union9p mount --fake -o lowerdir=/a base /mnt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(mountHelperArgs(strings.Fields(tc.argv)), " ")
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestParseMountOptions(t *testing.T) {
	m, err := parseMountOptions(splitOptionList(`lowerdir=/l1:/l\:2,upperdir=/u\,x,workdir=/w,nosuid,cache=mmap,msize=65536`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(m.union.Lowers, "|") != "/l1|/l:2" || m.union.Upper != "/u,x" || m.union.Workdir != "/w" {
		t.Errorf("union options %+v", m.union)
	}
	if m.flags != syscall.MS_NOSUID {
		t.Errorf("flags %#x, want MS_NOSUID", m.flags)
	}
	if strings.Join(m.nineP, ",") != "cache=mmap,msize=65536" {
		t.Errorf("9p options %v", m.nineP)
	}

	ro, err := parseMountOptions([]string{"lowerdir=/a:/b"})
	if err != nil || ro.flags&syscall.MS_RDONLY == 0 {
		t.Errorf("lowers only: flags %#x, %v; want read-only", ro.flags, err)
	}
	for _, bad := range []string{"upperdir=/u,workdir=/w", "lowerdir=/a,upperdir=/u", "lowerdir=/a,workdir=/w"} {
		if _, err := parseMountOptions(splitOptionList(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
