package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/union9p/union9p/test/vm/fixture"
	"golang.org/x/sys/unix"
)

// T is the state of one check on one mount. Helpers record a failure and
// carry on where that makes sense; fatal ones stop the check.
type T struct {
	root   string // mount point of the union under test
	failed bool
	msgs   []string
}

// stopCheck is panicked by Fatalf and recovered by run.
type stopCheck struct{}

// Errorf records a failure.
func (t *T) Errorf(format string, args ...any) {
	t.failed = true
	t.msgs = append(t.msgs, fmt.Sprintf(format, args...))
}

// Fatalf records a failure and ends the check.
func (t *T) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	panic(stopCheck{})
}

// P returns the path of rel under the mount.
func (t *T) P(rel string) string { return filepath.Join(t.root, rel) }

// OK fails the check fatally if err is not nil.
func (t *T) OK(what string, err error) {
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Read returns a file's content; an error is fatal.
func (t *T) Read(rel string) string {
	b, err := os.ReadFile(t.P(rel))
	t.OK("read "+rel, err)
	return string(b)
}

// Write creates or replaces a file.
func (t *T) Write(rel, content string) {
	t.OK("write "+rel, os.WriteFile(t.P(rel), []byte(content), 0o644))
}

// WantContent checks a file's content.
func (t *T) WantContent(rel, want string) {
	if got := t.Read(rel); got != want {
		t.Errorf("%s: content %q, want %q", rel, got, want)
	}
}

// WantErrno checks that err is one of the errnos.
func (t *T) WantErrno(what string, err error, want ...unix.Errno) {
	for _, w := range want {
		if errors.Is(err, w) {
			return
		}
	}
	names := make([]string, len(want))
	for i, w := range want {
		names[i] = unix.ErrnoName(w)
	}
	t.Errorf("%s: got %v, want %s", what, errnoString(err), strings.Join(names, " or "))
}

// WantGone checks that lstat says ENOENT.
func (t *T) WantGone(rel string) {
	var st unix.Stat_t
	t.WantErrno("lstat "+rel, unix.Lstat(t.P(rel), &st), unix.ENOENT)
}

// Lstat stats a path; an error is fatal.
func (t *T) Lstat(rel string) unix.Stat_t {
	var st unix.Stat_t
	t.OK("lstat "+rel, unix.Lstat(t.P(rel), &st))
	return st
}

// List returns a directory's entry names, sorted, without "." and "..".
func (t *T) List(rel string) []string {
	ents, err := os.ReadDir(t.P(rel))
	t.OK("readdir "+rel, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// WantList checks a directory's entries.
func (t *T) WantList(rel string, want ...string) {
	got := t.List(rel)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("readdir %s: %v, want %v", rel, got, want)
	}
}

// Busybox runs a busybox applet in the mount, as root or (uid > 0) as
// that user, and returns its combined output.
func (t *T) Busybox(uid int, args ...string) (string, error) {
	cmd := exec.Command("/bin/busybox", args...)
	cmd.Dir = t.root
	if uid > 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("busybox %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), err
}

// errnoString names an errno inside err, for messages.
func errnoString(err error) string {
	if err == nil {
		return "success"
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return unix.ErrnoName(e) + " (" + err.Error() + ")"
	}
	return err.Error()
}

// user is the unprivileged guest user of the ownership checks.
const user = fixture.UserID
