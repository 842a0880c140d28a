package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/union9p/union9p/test/vm/fixture"
	"golang.org/x/sys/unix"
)

// check is one named behaviour, run on each mount under test. Each check
// works in its own area of the fixture (see package fixture), so checks
// do not depend on their order.
type check struct {
	name string
	run  func(t *T)
}

// checks is the suite. Behaviour that overlayfs itself allows two ways
// (e.g. EXDEV or success for a lower directory rename) accepts both.
var checks = []check{
	{"read-shadowed", func(t *T) {
		t.WantContent("read/shadow.txt", "l1 shadow\n")
		t.WantContent("read/only-l2.txt", "only l2\n")
	}},
	{"read-whiteout-in-lower", func(t *T) {
		t.WantGone("read/hidden.txt")
		for _, n := range t.List("read") {
			if n == "hidden.txt" {
				t.Errorf("readdir read: lists whited-out hidden.txt")
			}
		}
	}},
	{"readdir-merged", func(t *T) {
		t.WantList("read/merged", "a", "b", "both")
		t.WantContent("read/merged/both", "l1 both\n")
		t.WantContent("read/merged/a", "l2 a\n")
	}},
	{"readdir-opaque-lower", func(t *T) {
		t.WantList("read/opaque", "l1file")
	}},
	{"readdir-after-changes", func(t *T) {
		t.Write("readdir/mixed/x4", "x4\n")
		t.OK("unlink x1", os.Remove(t.P("readdir/mixed/x1")))
		t.WantList("readdir/mixed", "x2", "x3", "x4")
	}},
	{"readdir-20k", func(t *T) {
		// getdents directly: busybox ls has no -f and lstats every
		// entry, which over 9p under emulation takes a minute.
		ents := t.Getdents("big")
		seen := map[string]bool{}
		for _, e := range ents {
			if seen[e.name] {
				t.Errorf("readdir big: %s listed twice", e.name)
			}
			seen[e.name] = true
			if e.name != "." && e.name != ".." && e.typ != unix.DT_REG {
				t.Fatalf("readdir big: %s has d_type %d, want DT_REG", e.name, e.typ)
			}
		}
		if want := fixture.BigDirEntries + 2; len(ents) != want {
			t.Errorf("readdir big: %d entries with . and .., want %d", len(ents), want)
		}
	}},
	{"readdir-stable-while-adding", func(t *T) {
		// Entries added while a directory is being read may or may not
		// show, but those that were there must show exactly once: the
		// offsets the kernel sends back are the server's cookies.
		fd, err := unix.Open(t.P("big"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
		t.OK("open big", err)
		defer unix.Close(fd)
		seen := map[string]int{}
		buf := make([]byte, 4096)
		read := func() int {
			n, err := unix.Getdents(fd, buf)
			t.OK("getdents", err)
			for b := buf[:n]; len(b) > 0; {
				reclen := int(binary.LittleEndian.Uint16(b[16:]))
				name := b[19:reclen]
				if i := bytes.IndexByte(name, 0); i >= 0 {
					name = name[:i]
				}
				seen[string(name)]++
				b = b[reclen:]
			}
			return n
		}
		read()
		for i := 0; i < 50; i++ {
			t.Write(fmt.Sprintf("big/added-%02d", i), "")
		}
		for read() > 0 {
		}
		missing, dup := 0, 0
		for i := 0; i < fixture.BigDirEntries; i++ {
			switch seen[fmt.Sprintf("f%05d", i)] {
			case 0:
				missing++
			case 1:
			default:
				dup++
			}
		}
		if missing > 0 || dup > 0 {
			t.Errorf("reading big/ while adding 50 entries: %d old entries missing, %d listed twice", missing, dup)
		}
	}},
	{"readdir-dtype", func(t *T) {
		want := map[string]uint8{"merged": unix.DT_DIR, "shadow.txt": unix.DT_REG, "opaque": unix.DT_DIR}
		for _, e := range t.Getdents("read") {
			if w, ok := want[e.name]; ok && e.typ != w {
				t.Errorf("readdir read: %s has d_type %d, want %d", e.name, e.typ, w)
			}
		}
		for _, e := range t.Getdents("symlink") {
			if e.name == "to-file" && e.typ != unix.DT_LNK {
				t.Errorf("readdir symlink: to-file has d_type %d, want DT_LNK", e.typ)
			}
		}
	}},
	{"copyup-write", func(t *T) {
		f, err := os.OpenFile(t.P("copyup/write.txt"), os.O_WRONLY|os.O_APPEND, 0)
		t.OK("open for append", err)
		_, err = f.WriteString("more\n")
		t.OK("append", err)
		t.OK("close", f.Close())
		t.WantContent("copyup/write.txt", "original\nmore\n")
	}},
	{"copyup-truncate", func(t *T) {
		t.OK("truncate", unix.Truncate(t.P("copyup/trunc.txt"), 4))
		t.WantContent("copyup/trunc.txt", "0123")
	}},
	{"copyup-chmod", func(t *T) {
		t.OK("chmod", unix.Chmod(t.P("copyup/chmod.txt"), 0o600))
		if st := t.Lstat("copyup/chmod.txt"); st.Mode&0o7777 != 0o600 {
			t.Errorf("mode %04o after chmod 0600", st.Mode&0o7777)
		}
		t.WantContent("copyup/chmod.txt", "chmod\n")
	}},
	{"copyup-utime", func(t *T) {
		ts := []unix.Timespec{{Sec: 1000000000, Nsec: 500}, {Sec: 1234567890, Nsec: 123456789}}
		t.OK("utimensat", unix.UtimesNanoAt(unix.AT_FDCWD, t.P("copyup/utime.txt"), ts, 0))
		// v9fs leaves s_time_gran at one second (Linux 6.1), so the
		// kernel truncates times it sets to whole seconds.
		if t.Is9P() {
			ts[0].Nsec, ts[1].Nsec = 0, 0
		}
		st := t.Lstat("copyup/utime.txt")
		if st.Mtim != ts[1] || st.Atim != ts[0] {
			t.Errorf("atime %v mtime %v, want %v %v", st.Atim, st.Mtim, ts[0], ts[1])
		}
		t.WantContent("copyup/utime.txt", "utime\n")
	}},
	{"copyup-chown", func(t *T) {
		t.OK("chown", os.Lchown(t.P("copyup/chown.txt"), user, user))
		if st := t.Lstat("copyup/chown.txt"); st.Uid != user || st.Gid != user {
			t.Errorf("owner %d:%d after chown %d:%d", st.Uid, st.Gid, user, user)
		}
	}},
	{"copyup-deep-parents", func(t *T) {
		before := t.Lstat("copyup/dir/deep/file.txt")
		f, err := os.OpenFile(t.P("copyup/dir/deep/file.txt"), os.O_WRONLY|os.O_APPEND, 0)
		t.OK("open", err)
		_, err = f.WriteString("x")
		t.OK("write", err)
		f.Close()
		t.WantContent("copyup/dir/deep/file.txt", "deep\nx")
		if st := t.Lstat("copyup/dir/deep/file.txt"); st.Mode != before.Mode {
			t.Errorf("mode %o after copy-up, was %o", st.Mode, before.Mode)
		}
		t.WantList("copyup/dir", "deep", "l1.txt")
	}},
	{"copyup-xattr", func(t *T) {
		t.WantXattr("copyup/xattr.txt", "user.fixture", "lower")
		t.OK("setxattr", unix.Lsetxattr(t.P("copyup/xattr.txt"), "user.added", []byte("new"), 0))
		t.WantXattr("copyup/xattr.txt", "user.added", "new")
		t.WantXattr("copyup/xattr.txt", "user.fixture", "lower")
		names := t.ListXattr("copyup/xattr.txt")
		if !contains(names, "user.added") || !contains(names, "user.fixture") {
			t.Errorf("listxattr: %v", names)
		}
		t.OK("removexattr", unix.Lremovexattr(t.P("copyup/xattr.txt"), "user.fixture"))
		_, err := unix.Lgetxattr(t.P("copyup/xattr.txt"), "user.fixture", make([]byte, 64))
		t.WantErrno("getxattr removed", err, unix.ENODATA)
	}},
	{"xattr-private-hidden", func(t *T) {
		for _, n := range t.ListXattr("read/opaque") {
			if strings.HasPrefix(n, "trusted.overlay.") || strings.HasPrefix(n, "user.overlay.") {
				t.Errorf("listxattr read/opaque shows %s", n)
			}
		}
		_, err := unix.Lgetxattr(t.P("read/opaque"), "trusted.overlay.opaque", make([]byte, 64))
		if err == nil {
			t.Errorf("getxattr trusted.overlay.opaque succeeded")
		}
		err = unix.Lsetxattr(t.P("read/shadow.txt"), "trusted.overlay.redirect", []byte("/etc"), 0)
		if err == nil {
			t.Errorf("setxattr trusted.overlay.redirect succeeded")
		}
	}},
	{"acl", func(t *T) {
		acl := t.Xattr("perm/acl.txt", "system.posix_acl_access")
		if !aclGrants(acl, user) {
			t.Errorf("lower ACL lost: % x", acl)
		}
		t.Write("perm/acl-new.txt", "acl\n")
		want := fixture.ACL(0o6, 0o4, 0o0, user+1, 0o4)
		t.OK("set ACL", unix.Lsetxattr(t.P("perm/acl-new.txt"), "system.posix_acl_access", want, 0))
		if got := t.Xattr("perm/acl-new.txt", "system.posix_acl_access"); !bytes.Equal(got, want) {
			t.Errorf("ACL read back % x, want % x", got, want)
		}
	}},
	{"whiteout-rm", func(t *T) {
		t.OK("unlink", os.Remove(t.P("rm/file.txt")))
		t.WantGone("rm/file.txt")
		if contains(t.List("rm"), "file.txt") {
			t.Errorf("readdir rm: lists removed file.txt")
		}
	}},
	{"whiteout-recreate", func(t *T) {
		t.OK("unlink", os.Remove(t.P("rm/again.txt")))
		t.Write("rm/again.txt", "new\n")
		t.WantContent("rm/again.txt", "new\n")
	}},
	{"whiteout-rmdir", func(t *T) {
		t.OK("rmdir", unix.Rmdir(t.P("rm/emptydir")))
		t.WantGone("rm/emptydir")
	}},
	{"rmdir-not-empty", func(t *T) {
		t.WantErrno("rmdir read/merged", unix.Rmdir(t.P("read/merged")), unix.ENOTEMPTY)
		t.WantList("read/merged", "a", "b", "both")
	}},
	{"opaque-after-rm-r-mkdir", func(t *T) {
		_, err := t.Busybox(0, "rm", "-r", "rm/tree")
		t.OK("rm -r", err)
		t.WantGone("rm/tree")
		t.OK("mkdir", os.Mkdir(t.P("rm/tree"), 0o755))
		t.WantList("rm/tree")
		t.Write("rm/tree/new", "new\n")
		t.WantList("rm/tree", "new")
	}},
	{"unlink-open-file", func(t *T) {
		f, err := os.Open(t.P("rm/open.txt"))
		t.OK("open", err)
		defer f.Close()
		t.OK("unlink", os.Remove(t.P("rm/open.txt")))
		buf := make([]byte, 64)
		n, err := f.ReadAt(buf, 0)
		if string(buf[:n]) != "still readable\n" {
			t.Errorf("read after unlink: %q, %v", buf[:n], err)
		}
	}},
	{"create-excl-existing", func(t *T) {
		_, err := os.OpenFile(t.P("read/only-l2.txt"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		t.WantErrno("O_EXCL on lower file", err, unix.EEXIST)
	}},
	{"rename-file", func(t *T) {
		t.OK("rename", os.Rename(t.P("rename/file.txt"), t.P("rename/moved.txt")))
		t.WantGone("rename/file.txt")
		t.WantContent("rename/moved.txt", "renamed\n")
		t.OK("rename over", os.Rename(t.P("rename/moved.txt"), t.P("rename/target.txt")))
		t.WantGone("rename/moved.txt")
		t.WantContent("rename/target.txt", "renamed\n")
		t.WantList("rename", "dir", "target.txt")
	}},
	{"rename-lower-dir", func(t *T) {
		// overlayfs without redirect_dir says EXDEV, and mv then
		// copies; either way the tree ends up the same.
		const dst = "rename/dir2"
		if err := os.Rename(t.P("rename/dir"), t.P(dst)); err != nil {
			t.WantErrno("rename lower dir", err, unix.EXDEV)
			_, err = t.Busybox(0, "mv", "rename/dir", dst)
			t.OK("mv (copy fallback)", err)
		}
		t.WantGone("rename/dir")
		t.WantList(dst, "sub", "x", "z")
		t.WantContent(dst+"/sub/y", "y\n")
		t.WantContent(dst+"/z", "z\n")
	}},
	{"rename-new-dir", func(t *T) {
		t.OK("mkdir", os.Mkdir(t.P("rename/newdir"), 0o755))
		t.Write("rename/newdir/f", "f\n")
		t.OK("rename", os.Rename(t.P("rename/newdir"), t.P("rename/newdir2")))
		t.WantGone("rename/newdir")
		t.WantContent("rename/newdir2/f", "f\n")
	}},
	{"hardlink-new", func(t *T) {
		t.OK("link", os.Link(t.P("link/src.txt"), t.P("link/dst.txt")))
		a, b := t.Lstat("link/src.txt"), t.Lstat("link/dst.txt")
		if a.Ino != b.Ino || a.Nlink != 2 || b.Nlink != 2 {
			t.Errorf("after link: ino %d/%d nlink %d/%d, want same ino, nlink 2", a.Ino, b.Ino, a.Nlink, b.Nlink)
		}
		f, err := os.OpenFile(t.P("link/dst.txt"), os.O_WRONLY|os.O_APPEND, 0)
		t.OK("open link", err)
		f.WriteString("via dst\n")
		f.Close()
		t.WantContent("link/src.txt", "src\nvia dst\n")
	}},
	{"hardlink-lower-pair", func(t *T) {
		a, b := t.Lstat("link/pair1"), t.Lstat("link/pair2")
		if a.Ino != b.Ino || a.Nlink != 2 {
			t.Errorf("lower hard links: ino %d/%d nlink %d/%d, want same ino, nlink 2", a.Ino, b.Ino, a.Nlink, b.Nlink)
		}
	}},
	{"symlink", func(t *T) {
		if target, err := os.Readlink(t.P("symlink/to-file")); err != nil || target != "../read/only-l2.txt" {
			t.Errorf("readlink: %q %v", target, err)
		}
		t.WantContent("symlink/to-file", "only l2\n")
		if st := t.Lstat("symlink/to-file"); st.Mode&unix.S_IFMT != unix.S_IFLNK {
			t.Errorf("lstat: mode %o, not a symlink", st.Mode)
		}
		var st unix.Stat_t
		t.WantErrno("stat dangling", unix.Stat(t.P("symlink/dangling"), &st), unix.ENOENT)
		t.OK("symlink", os.Symlink("to-file", t.P("symlink/new")))
		t.WantContent("symlink/new", "only l2\n")
	}},
	{"mkfifo", func(t *T) {
		t.OK("mkdir", os.Mkdir(t.P("fifo"), 0o755))
		t.OK("mkfifo", unix.Mkfifo(t.P("fifo/p"), 0o644))
		if st := t.Lstat("fifo/p"); st.Mode&unix.S_IFMT != unix.S_IFIFO {
			t.Errorf("lstat: mode %o, not a fifo", st.Mode)
		}
		f, err := os.OpenFile(t.P("fifo/p"), os.O_RDWR, 0)
		t.OK("open fifo", err)
		defer f.Close()
		f.WriteString("through the pipe")
		buf := make([]byte, 64)
		n, _ := f.Read(buf)
		if string(buf[:n]) != "through the pipe" {
			t.Errorf("fifo read %q", buf[:n])
		}
	}},
	{"mmap-read", func(t *T) {
		f, err := os.Open(t.P("mmap/data.bin"))
		t.OK("open", err)
		defer f.Close()
		m, err := unix.Mmap(int(f.Fd()), 0, 64<<10, unix.PROT_READ, unix.MAP_SHARED)
		t.OK("mmap", err)
		if !bytes.Equal(m, fixture.Pattern(64<<10, 1)) {
			t.Errorf("mapped data differs")
		}
		unix.Munmap(m)
	}},
	{"mmap-write", func(t *T) {
		f, err := os.OpenFile(t.P("mmap/rw.bin"), os.O_RDWR, 0)
		t.OK("open", err)
		m, err := unix.Mmap(int(f.Fd()), 0, 8<<10, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		t.OK("mmap shared writable", err)
		copy(m[4096:], "written through mmap")
		t.OK("msync", unix.Msync(m, unix.MS_SYNC))
		t.OK("munmap", unix.Munmap(m))
		t.OK("close", f.Close())
		want := fixture.Pattern(8<<10, 2)
		copy(want[4096:], "written through mmap")
		if got := t.Read("mmap/rw.bin"); got != string(want) {
			t.Errorf("content after mmap write differs")
		}
	}},
	{"fsync", func(t *T) {
		f, err := os.Create(t.P("fsync.txt"))
		t.OK("create", err)
		defer f.Close()
		f.WriteString("synced\n")
		t.OK("fsync", f.Sync())
		t.OK("fdatasync", unix.Fdatasync(int(f.Fd())))
		d, err := os.Open(t.P("copyup"))
		t.OK("open dir", err)
		defer d.Close()
		t.OK("fsync dir", d.Sync())
	}},
	{"flock", func(t *T) {
		holder := t.LockHolder("flock", "lock/flock.txt")
		defer holder.release()
		f, err := os.Open(t.P("lock/flock.txt"))
		t.OK("open", err)
		defer f.Close()
		t.WantErrno("flock held by another process", unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB), unix.EWOULDBLOCK)
		holder.release()
		t.OK("flock after release", unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB))
		t.OK("unlock", unix.Flock(int(f.Fd()), unix.LOCK_UN))
	}},
	{"fcntl-lock", func(t *T) {
		f, err := os.OpenFile(t.P("lock/fcntl.txt"), os.O_RDWR, 0)
		t.OK("open", err)
		defer f.Close()
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 100}
		t.OK("F_GETLK on an unlocked file", unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk))
		if lk.Type != unix.F_UNLCK {
			t.Errorf("F_GETLK on an unlocked file: type %d, want F_UNLCK", lk.Type)
		}
		holder := t.LockHolder("fcntl", "lock/fcntl.txt")
		defer holder.release()
		lk = unix.Flock_t{Type: unix.F_WRLCK, Start: 0, Len: 100}
		t.OK("F_GETLK", unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk))
		if lk.Type != unix.F_WRLCK || int(lk.Pid) != holder.cmd.Process.Pid {
			t.Errorf("F_GETLK: type %d pid %d, want F_WRLCK by %d", lk.Type, lk.Pid, holder.cmd.Process.Pid)
		}
		lk = unix.Flock_t{Type: unix.F_WRLCK, Start: 50, Len: 10}
		t.WantErrno("F_SETLK on a held range", unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk), unix.EAGAIN, unix.EACCES)
		lk = unix.Flock_t{Type: unix.F_WRLCK, Start: 200, Len: 10}
		t.OK("F_SETLK on a free range", unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk))
		holder.release()
		lk = unix.Flock_t{Type: unix.F_WRLCK, Start: 0, Len: 100}
		t.OK("F_SETLK after release", unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk))
	}},
	{"setuid-kept", func(t *T) {
		if st := t.Lstat("perm/setuid.bin"); st.Mode&0o7777 != 0o4755 {
			t.Errorf("lower setuid file: mode %04o, want 4755", st.Mode&0o7777)
		}
		t.OK("chmod 4711", unix.Chmod(t.P("perm/setuid.bin"), 0o4711))
		if st := t.Lstat("perm/setuid.bin"); st.Mode&0o7777 != 0o4711 {
			t.Errorf("after chmod 4711: mode %04o", st.Mode&0o7777)
		}
		t.Write("perm/new-setgid", "")
		t.OK("chmod 2755", unix.Chmod(t.P("perm/new-setgid"), 0o2755))
		if st := t.Lstat("perm/new-setgid"); st.Mode&0o7777 != 0o2755 {
			t.Errorf("after chmod 2755: mode %04o", st.Mode&0o7777)
		}
		t.OK("mkdir", os.Mkdir(t.P("perm/sticky"), 0o755))
		t.OK("chmod 1777", unix.Chmod(t.P("perm/sticky"), 0o1777))
		if st := t.Lstat("perm/sticky"); st.Mode&0o7777 != 0o1777 {
			t.Errorf("dir after chmod 1777: mode %04o", st.Mode&0o7777)
		}
	}},
	{"owner-non-root", func(t *T) {
		_, err := t.Busybox(user, "sh", "-c", "cd perm/userdir && echo u > ufile && mkdir udir && ln -s ufile ulink && mkfifo ufifo")
		t.OK("create as user", err)
		for _, n := range []string{"ufile", "udir", "ulink", "ufifo"} {
			if st := t.Lstat("perm/userdir/" + n); st.Uid != user || st.Gid != user {
				t.Errorf("%s created by uid %d: owner %d:%d", n, user, st.Uid, st.Gid)
			}
		}
		t.WantContent("perm/userdir/ufile", "u\n")
	}},
	{"permission-denied-non-root", func(t *T) {
		if _, err := t.Busybox(user, "sh", "-c", "echo x >> perm/rootonly.txt"); err == nil {
			t.Errorf("user %d appended to a root-owned 0644 file", user)
		}
		if _, err := t.Busybox(user, "rm", "-f", "read/shadow.txt"); err == nil {
			t.Errorf("user %d removed a file from a root-owned 0755 directory", user)
		}
		t.WantContent("perm/rootonly.txt", "root only\n")
		t.WantContent("read/shadow.txt", "l1 shadow\n")
	}},
	{"df", func(t *T) {
		var fs unix.Statfs_t
		t.OK("statfs", unix.Statfs(t.root, &fs))
		if fs.Blocks == 0 || fs.Bsize == 0 {
			t.Errorf("statfs: %d blocks of %d bytes", fs.Blocks, fs.Bsize)
		}
		out, err := t.Busybox(0, "df", "-k", t.root)
		t.OK("df", err)
		if !strings.Contains(out, t.root) {
			t.Errorf("df output names no %s: %q", t.root, out)
		}
	}},
	{"largefile-read", func(t *T) {
		f, err := os.Open(t.P("sparse/big.bin"))
		t.OK("open", err)
		defer f.Close()
		fi, err := f.Stat()
		t.OK("fstat", err)
		if fi.Size() != fixture.SparseSize {
			t.Errorf("size %d, want %d", fi.Size(), int64(fixture.SparseSize))
		}
		buf := make([]byte, len(fixture.SparseMarker)+4)
		n, err := f.ReadAt(buf, fixture.SparseMarkerOff-2)
		t.OK("pread past 4 GiB", err)
		if want := "\x00\x00" + fixture.SparseMarker + "\x00\x00"; string(buf[:n]) != want {
			t.Errorf("pread at 4 GiB+: %q, want %q", buf[:n], want)
		}
	}},
	{"largefile-write", func(t *T) {
		const off = 4<<30 + 12345
		f, err := os.Create(t.P("sparse/new.bin"))
		t.OK("create", err)
		defer f.Close()
		_, err = f.WriteAt([]byte("HELLO"), off)
		t.OK("pwrite past 4 GiB", err)
		fi, err := f.Stat()
		t.OK("fstat", err)
		if fi.Size() != off+5 {
			t.Errorf("size %d, want %d", fi.Size(), off+5)
		}
		buf := make([]byte, 7)
		n, _ := f.ReadAt(buf, off-1)
		if string(buf[:n]) != "\x00HELLO" {
			t.Errorf("read back %q", buf[:n])
		}
		n, _ = f.ReadAt(buf[:4], 1<<30)
		if string(buf[:n]) != "\x00\x00\x00\x00" {
			t.Errorf("hole reads %q", buf[:n])
		}
	}},
	{"ino-stable-across-copyup", func(t *T) {
		before := t.Lstat("copyup/ino.txt")
		t.OK("chmod", unix.Chmod(t.P("copyup/ino.txt"), 0o640))
		after := t.Lstat("copyup/ino.txt")
		if before.Ino != after.Ino {
			t.Errorf("inode number changed on copy-up: %d -> %d", before.Ino, after.Ino)
		}
	}},
	{"hardlink-lower-unlink-one", func(t *T) {
		t.OK("unlink", os.Remove(t.P("link/trio2")))
		t.WantGone("link/trio2")
		t.WantContent("link/trio1", "trio\n")
	}},
	{"acl-kept-on-copyup", func(t *T) {
		t.OK("chown (copy-up)", os.Lchown(t.P("perm/acl-copyup.txt"), 0, user))
		if acl := t.Xattr("perm/acl-copyup.txt", "system.posix_acl_access"); !aclGrants(acl, user) {
			t.Errorf("ACL lost on copy-up: % x", acl)
		}
	}},
	{"setgid-dir-inherits-group", func(t *T) {
		t.OK("mkdir", os.Mkdir(t.P("perm/sgid"), 0o755))
		t.OK("chown", os.Lchown(t.P("perm/sgid"), 0, user))
		t.OK("chmod 2775", unix.Chmod(t.P("perm/sgid"), 0o2775))
		t.Write("perm/sgid/f", "")
		t.OK("mkdir sub", os.Mkdir(t.P("perm/sgid/sub"), 0o755))
		if st := t.Lstat("perm/sgid/f"); st.Gid != user {
			t.Errorf("file in a setgid dir: gid %d, want %d", st.Gid, user)
		}
		if st := t.Lstat("perm/sgid/sub"); st.Gid != user || st.Mode&unix.S_ISGID == 0 {
			t.Errorf("dir in a setgid dir: gid %d mode %o, want gid %d and setgid", st.Gid, st.Mode, user)
		}
	}},
	{"chmod-denied-non-owner", func(t *T) {
		if _, err := t.Busybox(user, "chmod", "777", "perm/rootonly.txt"); err == nil {
			t.Errorf("user %d changed the mode of a root-owned file", user)
		}
		if st := t.Lstat("perm/rootonly.txt"); st.Mode&0o7777 != 0o644 {
			t.Errorf("mode %04o after a refused chmod", st.Mode&0o7777)
		}
	}},
	{"name-too-long", func(t *T) {
		t.OK("mkdir", os.Mkdir(t.P("names"), 0o755))
		t.Write("names/"+strings.Repeat("n", 255), "")
		err := os.WriteFile(t.P("names/"+strings.Repeat("n", 256)), nil, 0o644)
		t.WantErrno("create a 256-byte name", err, unix.ENAMETOOLONG)
	}},
	{"rename-dir-into-itself", func(t *T) {
		t.WantErrno("rename read/merged into itself", os.Rename(t.P("read/merged"), t.P("read/merged/inside")), unix.EINVAL)
	}},
	{"copyup-o-trunc", func(t *T) {
		f, err := os.OpenFile(t.P("copyup/otrunc.txt"), os.O_WRONLY|os.O_TRUNC, 0)
		t.OK("open O_TRUNC", err)
		f.Close()
		if st := t.Lstat("copyup/otrunc.txt"); st.Size != 0 {
			t.Errorf("size %d after O_TRUNC", st.Size)
		}
	}},
	{"copyup-concurrent", func(t *T) {
		// Two processes' first writes to one lower file race to copy
		// it up; both writes must survive.
		const n = 8
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			go func(i int) {
				_, err := t.Busybox(0, "dd", "if=/dev/zero", "of=copyup/concurrent.bin", "conv=notrunc",
					"bs=4096", "count=1", fmt.Sprintf("seek=%d", i*16))
				errs <- err
			}(i)
		}
		for i := 0; i < n; i++ {
			if err := <-errs; err != nil {
				t.Errorf("%v", err)
			}
		}
		// Now mark each block so that a lost write shows.
		for i := 0; i < n; i++ {
			go func(i int) {
				f, err := os.OpenFile(t.P("copyup/concurrent.bin"), os.O_WRONLY, 0)
				if err == nil {
					_, err = f.WriteAt([]byte(fmt.Sprintf("writer %d", i)), int64(i)*65536)
					f.Close()
				}
				errs <- err
			}(i)
		}
		for i := 0; i < n; i++ {
			if err := <-errs; err != nil {
				t.Errorf("%v", err)
			}
		}
		data := t.Read("copyup/concurrent.bin")
		if len(data) != 1<<20 {
			t.Fatalf("size %d, want %d", len(data), 1<<20)
		}
		for i := 0; i < n; i++ {
			if want := fmt.Sprintf("writer %d", i); data[i*65536:i*65536+len(want)] != want {
				t.Errorf("write of writer %d lost", i)
			}
		}
	}},
	{"copyup-keeps-holes", func(t *T) {
		f, err := os.OpenFile(t.P("copyup/sparse.bin"), os.O_WRONLY|os.O_APPEND, 0)
		t.OK("open", err)
		_, err = f.WriteString("+")
		t.OK("append", err)
		t.OK("close", f.Close())
		st := t.Lstat("copyup/sparse.bin")
		if st.Size != fixture.SparseCopyupSize+1 {
			t.Errorf("size %d", st.Size)
		}
		if st.Blocks*512 > 16<<20 {
			t.Errorf("%d bytes allocated after copy-up of a file with 4 KiB of data: holes were filled", st.Blocks*512)
		}
	}},
	{"copyup-symlink", func(t *T) {
		t.OK("lchown", os.Lchown(t.P("copyup/symlink"), user, user))
		st := t.Lstat("copyup/symlink")
		if st.Uid != user || st.Mode&unix.S_IFMT != unix.S_IFLNK {
			t.Errorf("after lchown: uid %d mode %o", st.Uid, st.Mode)
		}
		if target, err := os.Readlink(t.P("copyup/symlink")); err != nil || target != "target-of-symlink" {
			t.Errorf("readlink after copy-up: %q %v", target, err)
		}
	}},
	{"rmdir-after-emptying-merged", func(t *T) {
		t.OK("unlink a", os.Remove(t.P("rm/merged/a")))
		t.OK("unlink b", os.Remove(t.P("rm/merged/b")))
		t.WantList("rm/merged")
		t.OK("rmdir the emptied merged dir", unix.Rmdir(t.P("rm/merged")))
		t.WantGone("rm/merged")
	}},
	{"mknod-devices-and-sockets", func(t *T) {
		t.OK("mkdir", os.Mkdir(t.P("nodes"), 0o755))
		t.OK("mknod c 1 3", unix.Mknod(t.P("nodes/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		if st := t.Lstat("nodes/null"); st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
			t.Errorf("char device: mode %o rdev %d:%d", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		t.OK("socket", err)
		defer unix.Close(fd)
		t.OK("bind a unix socket", unix.Bind(fd, &unix.SockaddrUnix{Name: t.P("nodes/sock")}))
		if st := t.Lstat("nodes/sock"); st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			t.Errorf("socket: mode %o", st.Mode)
		}
	}},
	{"statx-times-advance", func(t *T) {
		t.Write("times.txt", "a")
		before := t.Lstat("times.txt")
		time.Sleep(20 * time.Millisecond)
		t.Write("times.txt", "b")
		after := t.Lstat("times.txt")
		if unix.TimespecToNsec(after.Mtim) <= unix.TimespecToNsec(before.Mtim) {
			t.Errorf("mtime did not advance on write: %v then %v", before.Mtim, after.Mtim)
		}
	}},
}

// Is9P reports whether the mount is a 9p one, by its type in
// /proc/mounts (statfs's f_type over 9p is the server's file system's).
func (t *T) Is9P() bool {
	b, err := os.ReadFile("/proc/mounts")
	t.OK("read /proc/mounts", err)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[1] == t.root {
			return f[2] == "9p"
		}
	}
	t.Fatalf("%s is not in /proc/mounts", t.root)
	return false
}

// dirent is one entry as getdents(2) returns it.
type dirent struct {
	name string
	typ  uint8
}

// Getdents lists a directory with getdents64 in 4 KiB reads, with "."
// and "..", in the order the file system returns them.
func (t *T) Getdents(rel string) []dirent {
	fd, err := unix.Open(t.P(rel), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	t.OK("open "+rel, err)
	defer unix.Close(fd)
	var out []dirent
	buf := make([]byte, 4096)
	for {
		n, err := unix.Getdents(fd, buf)
		t.OK("getdents "+rel, err)
		if n == 0 {
			return out
		}
		for b := buf[:n]; len(b) > 0; {
			reclen := int(binary.LittleEndian.Uint16(b[16:]))
			name := b[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			out = append(out, dirent{name: string(name), typ: b[18]})
			b = b[reclen:]
		}
	}
}

// WantXattr checks one xattr's value.
func (t *T) WantXattr(rel, name, want string) {
	if got := string(t.Xattr(rel, name)); got != want {
		t.Errorf("getxattr %s %s: %q, want %q", rel, name, got, want)
	}
}

// Xattr reads an xattr; an error is fatal.
func (t *T) Xattr(rel, name string) []byte {
	buf := make([]byte, 4096)
	n, err := unix.Lgetxattr(t.P(rel), name, buf)
	t.OK("getxattr "+rel+" "+name, err)
	return buf[:n]
}

// ListXattr lists xattr names; an error is fatal.
func (t *T) ListXattr(rel string) []string {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(t.P(rel), buf)
	t.OK("listxattr "+rel, err)
	var out []string
	for _, s := range strings.Split(string(buf[:n]), "\x00") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// aclGrants reports whether a posix_acl_access value has an entry for
// user uid.
func aclGrants(acl []byte, uid uint32) bool {
	if len(acl) < 4 {
		return false
	}
	for e := acl[4:]; len(e) >= 8; e = e[8:] {
		if binary.LittleEndian.Uint16(e) == 0x02 && binary.LittleEndian.Uint32(e[4:]) == uid {
			return true
		}
	}
	return false
}

// lockHolder is a child process holding a lock on a file.
type lockHolder struct {
	cmd   *exec.Cmd
	stdin interface{ Close() error }
	done  bool
}

// LockHolder starts this program as `lock-helper KIND PATH` (see
// holdLock) and waits until the child holds the lock.
func (t *T) LockHolder(kind, rel string) *lockHolder {
	cmd := exec.Command("/proc/self/exe", "lock-helper", kind, t.P(rel))
	stdin, err := cmd.StdinPipe()
	t.OK("pipe", err)
	stdout, err := cmd.StdoutPipe()
	t.OK("pipe", err)
	cmd.Stderr = os.Stderr
	t.OK("start lock helper", cmd.Start())
	h := &lockHolder{cmd: cmd, stdin: stdin}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "locked\n" {
		h.release()
		t.Fatalf("lock helper: %q", line)
	}
	return h
}

// release ends the holder (closing its stdin) and waits for it.
func (h *lockHolder) release() {
	if !h.done {
		h.done = true
		h.stdin.Close()
		h.cmd.Wait()
	}
}

// holdLock is the lock-helper mode: take the lock, say "locked", hold it
// until stdin closes.
func holdLock(kind, path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	switch kind {
	case "flock":
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
	case "fcntl":
		lk := unix.Flock_t{Type: unix.F_WRLCK, Start: 0, Len: 100}
		err = unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
	default:
		err = fmt.Errorf("unknown lock kind %q", kind)
	}
	if err != nil {
		fmt.Println("error:", err)
		return err
	}
	fmt.Println("locked")
	var b [1]byte
	os.Stdin.Read(b[:])
	return nil
}
