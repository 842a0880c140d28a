package virtfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/union9p/union9p/union"
	"golang.org/x/sys/unix"
)

// mounted is a union served by this package on a detached mount, used
// through /proc/self/fd/N as QEMU uses it.
type mounted struct {
	root          string // /proc/self/fd/N
	lower, upper  string
	mnt           *os.File
	srv           *Server
	u             *union.Union
	served        chan error
	lowerSnapshot string
}

// mountUnion serves a union of a lower holding files (name -> content;
// a name ending in / is a directory) over an empty upper.
func mountUnion(t *testing.T, files map[string]string) *mounted {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("FUSE mounts need root")
	}
	base := t.TempDir()
	m := &mounted{lower: filepath.Join(base, "lower"), upper: filepath.Join(base, "upper")}
	work := filepath.Join(base, "work")
	for _, d := range []string{m.lower, m.upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p := filepath.Join(m.lower, n)
		var err error
		if n[len(n)-1] == '/' {
			err = os.MkdirAll(p, 0o755)
		} else {
			err = os.WriteFile(p, []byte(files[n]), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	m.lowerSnapshot = snapshot(t, m.lower)
	u, err := union.Open(union.Options{Lowers: []string{m.lower}, Upper: m.upper, Workdir: work, RedirectDir: union.RedirectOn})
	if err != nil {
		t.Fatal(err)
	}
	dev, mnt, err := Mount()
	if err != nil {
		u.Close()
		t.Fatal(err)
	}
	srv, err := New(u, int(dev.Fd()), nil)
	if err != nil {
		u.Close()
		t.Fatal(err)
	}
	m.mnt, m.srv, m.u, m.served = mnt, srv, u, make(chan error, 1)
	go func() { srv.Serve(); m.served <- nil }()
	m.root = "/proc/self/fd/" + strconv.Itoa(int(mnt.Fd()))
	m.answerPollOnce(t)
	t.Cleanup(func() {
		m.unmount(t)
		u.Close()
		dev.Close()
		if after := snapshot(t, m.lower); after != m.lowerSnapshot {
			t.Errorf("the lower changed:\nbefore:\n%s\nafter:\n%s", m.lowerSnapshot, after)
		}
	})
	return m
}

// answerPollOnce makes the kernel ask this mount FUSE_POLL once, with
// raw calls, before the test opens anything on it through package os.
//
// Why: os.Open registers a file with Go's epoll, and epoll_ctl on a FUSE
// file sends FUSE_POLL and waits for this very process to answer, while
// its thread keeps its P (epoll_ctl is not a blocking syscall to Go's
// scheduler). Once every P is held so, nothing runs go-fuse's answer and
// the test hangs in fuse_file_poll (seen under load). go-fuse prevents it
// by a poll of a magic file at its mount path, but this mount has no
// path. After one ENOSYS answer the kernel stops asking; poll(2) through
// package unix gives up its P while it waits.
func (m *mounted) answerPollOnce(t *testing.T) {
	t.Helper()
	probe := m.path(".poll-probe")
	fd, err := unix.Open(probe, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatalf("poll probe: %v", err)
	}
	_, err = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
	unix.Close(fd)
	if err == nil {
		err = unix.Unlink(probe)
	}
	if err != nil {
		t.Fatalf("poll probe: %v", err)
	}
}

// unmount closes the mount's only descriptor and waits for Serve to
// return, as when QEMU exits.
func (m *mounted) unmount(t *testing.T) {
	if m.mnt == nil {
		return
	}
	m.mnt.Close()
	m.mnt = nil
	select {
	case <-m.served:
	case <-time.After(10 * time.Second):
		t.Error("Serve did not return 10 s after the mount's last descriptor was closed")
	}
}

func (m *mounted) path(p string) string { return m.root + "/" + p }

// snapshot lists every path under dir with its mode, size and content.
func snapshot(t *testing.T, dir string) string {
	var b bytes.Buffer
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		b.WriteString(p + " " + fi.Mode().String() + " " + strconv.FormatInt(fi.Size(), 10))
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.Write(data)
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func wantErrno(t *testing.T, what string, err error, want unix.Errno) {
	t.Helper()
	var got unix.Errno
	if !errors.As(err, &got) || got != want {
		t.Errorf("%s: got %v, want %v", what, err, want)
	}
}

func TestServesTheUnionWithOverlaySemantics(t *testing.T) {
	m := mountUnion(t, map[string]string{"a": "lower a", "d/": "", "d/x": "x", "e/": "", "e/y": "y"})

	if data, err := os.ReadFile(m.path("a")); err != nil || string(data) != "lower a" {
		t.Fatalf("read a: %q %v", data, err)
	}
	if err := os.WriteFile(m.path("a"), []byte("upper a"), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(m.path("a")); err != nil || string(data) != "upper a" {
		t.Errorf("read a after write: %q %v", data, err)
	}
	if data, err := os.ReadFile(filepath.Join(m.upper, "a")); err != nil || string(data) != "upper a" {
		t.Errorf("upper a: %q %v, want the copy-up with the new content", data, err)
	}

	// Removing a lower file leaves a whiteout; the merged listing hides it.
	if err := os.Remove(m.path("d/x")); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(m.upper, "d/x"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("upper d/x: %v mode %o rdev %d, want a 0/0 whiteout", err, st.Mode, st.Rdev)
	}
	wantErrno(t, "stat removed d/x", unix.Stat(m.path("d/x"), &st), unix.ENOENT)

	// A directory with lower parts renamed (redirect_dir=on), then listed.
	if err := os.Rename(m.path("e"), m.path("f")); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(m.path("."))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if want := []string{"a", "d", "f"}; !slices.Equal(got, want) {
		t.Errorf("root lists %q, want %q", got, want)
	}
	if data, err := os.ReadFile(m.path("f/y")); err != nil || string(data) != "y" {
		t.Errorf("f/y after the rename: %q %v", data, err)
	}

	// The errnos a client relies on.
	wantErrno(t, "mkdir existing", os.Mkdir(m.path("d"), 0o755), unix.EEXIST)
	wantErrno(t, "rmdir non-empty", unix.Rmdir(m.path("f")), unix.ENOTEMPTY)
	wantErrno(t, "unlink a directory", unix.Unlink(m.path("f")), unix.EISDIR)
	wantErrno(t, "open missing", unix.Stat(m.path("nothing"), &st), unix.ENOENT)
	wantErrno(t, "lookup under a file", unix.Stat(m.path("a/x"), &st), unix.ENOTDIR)
}

func TestNamespaceOpsAsQEMUMakesThem(t *testing.T) {
	m := mountUnion(t, map[string]string{"lowerfile": "data"})
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("mkdir", unix.Mkdir(m.path("dir"), 0o750))
	must("mknod fifo", unix.Mknod(m.path("dir/fifo"), unix.S_IFIFO|0o640, 0))
	must("symlink", unix.Symlink("../lowerfile", m.path("dir/link")))
	must("link", unix.Link(m.path("lowerfile"), m.path("dir/hard")))
	// passthrough: QEMU creates as itself, then gives the guest's owner.
	must("lchown", unix.Lchown(m.path("dir/link"), 1000, 1001))
	must("chmod", unix.Chmod(m.path("dir"), 0o711))
	must("truncate", unix.Truncate(m.path("dir/hard"), 2))
	ts := []unix.Timespec{{Sec: 1000, Nsec: 5}, {Sec: 2000, Nsec: 7}}
	must("utimensat", unix.UtimesNanoAt(unix.AT_FDCWD, m.path("dir/hard"), ts, unix.AT_SYMLINK_NOFOLLOW))

	var st unix.Stat_t
	must("lstat link", unix.Lstat(m.path("dir/link"), &st))
	if st.Uid != 1000 || st.Gid != 1001 || st.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Errorf("link: uid %d gid %d mode %o", st.Uid, st.Gid, st.Mode)
	}
	if target, err := os.Readlink(m.path("dir/link")); err != nil || target != "../lowerfile" {
		t.Errorf("readlink: %q %v", target, err)
	}
	must("stat dir", unix.Stat(m.path("dir"), &st))
	if st.Mode&0o7777 != 0o711 {
		t.Errorf("dir mode %o, want 711", st.Mode&0o7777)
	}
	must("stat hard", unix.Stat(m.path("dir/hard"), &st))
	if st.Mtim.Sec != 2000 || st.Mtim.Nsec != 7 || st.Size != 2 || st.Nlink != 2 {
		t.Errorf("hard: mtime %v size %d nlink %d, want 2000.000000007, 2, 2", st.Mtim, st.Size, st.Nlink)
	}
	if data, err := os.ReadFile(m.path("lowerfile")); err != nil || string(data) != "da" {
		t.Errorf("lowerfile through its other name: %q %v, want the truncated copy", data, err)
	}
	must("stat fifo", unix.Stat(m.path("dir/fifo"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo mode %o", st.Mode)
	}
	must("rename over", unix.Rename(m.path("dir/hard"), m.path("dir/fifo")))
	must("unlink", unix.Unlink(m.path("dir/fifo")))
	must("unlink", unix.Unlink(m.path("dir/link")))
	must("rmdir", unix.Rmdir(m.path("dir")))
	wantErrno(t, "stat removed dir", unix.Stat(m.path("dir"), &st), unix.ENOENT)
}

func TestXattrsForMappedXattrAndStatfs(t *testing.T) {
	m := mountUnion(t, map[string]string{"f": "x"})
	// security_model=mapped-xattr keeps the guest's owner in user.virtfs.*.
	if err := unix.Lsetxattr(m.path("f"), "user.virtfs.uid", []byte{0xe8, 3, 0, 0}, 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(m.path("f"), "user.virtfs.uid", buf)
	if err != nil || !bytes.Equal(buf[:n], []byte{0xe8, 3, 0, 0}) {
		t.Errorf("getxattr: %x %v", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(m.path("f"), "user.virtfs.uid", make([]byte, 1)); !errors.Is(err, unix.ERANGE) {
		t.Errorf("getxattr into 1 byte: %v, want ERANGE", err)
	}
	n, err = unix.Llistxattr(m.path("f"), buf)
	if err != nil || !bytes.Contains(buf[:n], []byte("user.virtfs.uid\x00")) {
		t.Errorf("listxattr: %q %v", buf[:n], err)
	}
	wantErrno(t, "set a private xattr", unix.Lsetxattr(m.path("f"), "trusted.overlay.opaque", []byte("y"), 0), unix.EPERM)
	if err := unix.Lremovexattr(m.path("f"), "user.virtfs.uid"); err != nil {
		t.Error(err)
	}
	_, err = unix.Lgetxattr(m.path("f"), "user.virtfs.uid", buf)
	wantErrno(t, "getxattr removed", err, unix.ENODATA)

	var got, want unix.Statfs_t
	if err := unix.Statfs(m.root, &got); err != nil {
		t.Fatal(err)
	}
	if err := unix.Statfs(m.upper, &want); err != nil {
		t.Fatal(err)
	}
	if got.Blocks != want.Blocks || got.Bsize != want.Bsize {
		t.Errorf("statfs: %d blocks of %d, want the upper's %d of %d", got.Blocks, got.Bsize, want.Blocks, want.Bsize)
	}
}

func TestMountIsPrivateAndGoesWithItsDescriptor(t *testing.T) {
	m := mountUnion(t, map[string]string{"f": "x"})
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(mounts, []byte(" - fuse ")) {
		t.Errorf("the detached mount shows in the mount table:\n%s", mounts)
	}
	m.unmount(t) // fails the test if Serve does not return
}

// A listing longer than one READDIRPLUS reply is read in several
// requests without a handle (noOpendir): every entry once, merged.
func TestLongListingAcrossRequests(t *testing.T) {
	files := map[string]string{"big/": ""}
	for i := range 1500 {
		files["big/lower-"+strconv.Itoa(i)+"-with-a-long-name-to-fill-the-buffer"] = ""
	}
	m := mountUnion(t, files)
	for i := range 700 {
		if err := os.WriteFile(m.path("big/upper-"+strconv.Itoa(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		if err := os.Remove(m.path("big/lower-" + strconv.Itoa(i) + "-with-a-long-name-to-fill-the-buffer")); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 {
		ents, err := os.ReadDir(m.path("big"))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range ents {
			if seen[e.Name()] {
				t.Fatalf("round %d: %s listed twice", round, e.Name())
			}
			seen[e.Name()] = true
		}
		if len(ents) != 1500+700-100 || seen["lower-5-with-a-long-name-to-fill-the-buffer"] || !seen["upper-699"] || !seen["lower-1499-with-a-long-name-to-fill-the-buffer"] {
			t.Errorf("round %d: %d entries, want 2100 without the removed ones", round, len(ents))
		}
	}
}

// Entries added while a directory is being read do not shift the rest
// of the listing (offsets are cookies of one listing per directory,
// noopendir.go): every old entry once, none twice.
func TestListingStableWhileAdding(t *testing.T) {
	files := map[string]string{"big/": ""}
	for i := range 3000 {
		files[fmt.Sprintf("big/f%05d", i)] = ""
	}
	m := mountUnion(t, files)
	d, err := os.Open(m.path("big"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	seen := map[string]int{}
	first, err := d.Readdirnames(100)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range first {
		seen[n]++
	}
	for i := range 50 {
		if err := os.WriteFile(m.path(fmt.Sprintf("big/added-%02d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rest, err := d.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range rest {
		seen[n]++
	}
	for i := range 3000 {
		if n := seen[fmt.Sprintf("f%05d", i)]; n != 1 {
			t.Fatalf("f%05d listed %d times", i, n)
		}
	}
}
