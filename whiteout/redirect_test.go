package whiteout

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

func TestValidRedirect(t *testing.T) {
	for s, want := range map[string]error{
		"a": nil, "/a": nil, "/a/b": nil, "..": nil, "/a/../b": nil,
		"": unix.EINVAL, "a/b": unix.EINVAL, "../a": unix.EINVAL, "/": unix.EINVAL,
		"//a": unix.EINVAL, "/a/": unix.EINVAL, "/a//b": unix.EINVAL, "a\x00b": unix.EINVAL,
	} {
		if got := ValidRedirect(s); got != want {
			t.Errorf("ValidRedirect(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestRedirectRoundTrip(t *testing.T) {
	ns := User
	if os.Geteuid() == 0 {
		ns = Trusted
	}
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(dir+"/d", 0o755))
	fd := openDir(t, dir+"/d")
	if r, err := ReadRedirect(fd, ns); r != "" || err != nil {
		t.Fatalf("no redirect yet: got %q, %v", r, err)
	}
	must(SetRedirect(fd, ns, "/a/b"))
	if r, err := ReadRedirect(fd, ns); r != "/a/b" || err != nil {
		t.Errorf("ReadRedirect = %q, %v; want /a/b", r, err)
	}
	if r, err := ReadRedirectAt(openDir(t, dir), "d", ns); r != "/a/b" || err != nil {
		t.Errorf("ReadRedirectAt = %q, %v; want /a/b", r, err)
	}
	if err := SetRedirect(fd, ns, "a/b"); err != unix.EINVAL {
		t.Errorf("SetRedirect of a malformed value: %v, want EINVAL", err)
	}
	must(unix.Setxattr("/proc/self/fd/"+strconv.Itoa(fd), string(ns)+"redirect", []byte("//x"), 0))
	if _, err := ReadRedirect(fd, ns); err != unix.EINVAL {
		t.Errorf("malformed stored value: %v, want EINVAL", err)
	}
}
