package difftest

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// hostSnapshot describes every object below a host directory (the
// directory included) by its relative path: type and mode, owner, size,
// link count, device number, mtime, content hash or link target, and all
// extended attributes of every namespace. Two snapshots of one tree are
// equal exactly when nothing in it changed that a layer must keep.
type hostSnapshot map[string]string

func snapshotHost(t *testing.T, root string) hostSnapshot {
	t.Helper()
	snap := hostSnapshot{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		desc, err := describeHostObject(p)
		if err != nil {
			return err
		}
		snap[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	return snap
}

func describeHostObject(p string) (string, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "mode=%07o uid=%d gid=%d nlink=%d rdev=%d mtime=%d.%09d",
		st.Mode, st.Uid, st.Gid, st.Nlink, st.Rdev, st.Mtim.Sec, st.Mtim.Nsec)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		data, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, " size=%d sha256=%x", st.Size, sha256.Sum256(data))
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, " target=%q", target)
	}
	xattrs, err := hostXattrs(p)
	if err != nil {
		return "", err
	}
	for _, kv := range xattrs {
		fmt.Fprintf(&b, " %s", kv)
	}
	return b.String(), nil
}

// hostXattrs returns "name=value" for every extended attribute of p (not
// following a symbolic link), sorted.
func hostXattrs(p string) ([]string, error) {
	names, err := listXattrNames(func(buf []byte) (int, error) { return unix.Llistxattr(p, buf) })
	if err != nil {
		return nil, fmt.Errorf("listxattr %s: %w", p, err)
	}
	var out []string
	for _, name := range names {
		v, err := readXattr(func(buf []byte) (int, error) { return unix.Lgetxattr(p, name, buf) })
		if err != nil {
			return nil, fmt.Errorf("getxattr %s %s: %w", p, name, err)
		}
		out = append(out, fmt.Sprintf("%s=%q", name, v))
	}
	sort.Strings(out)
	return out, nil
}

// listXattrNames calls list with a buffer that grows until the names fit.
func listXattrNames(list func([]byte) (int, error)) ([]string, error) {
	buf, err := readXattr(list)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, name := range strings.Split(string(buf), "\x00") {
		if name != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// readXattr calls get with a buffer that grows until the value fits.
func readXattr(get func([]byte) (int, error)) ([]byte, error) {
	size := 256
	for {
		buf := make([]byte, size)
		n, err := get(buf)
		if err == unix.ERANGE && size < 1<<20 {
			size *= 4
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// requireUnchanged fails the test for every difference between two
// snapshots of the tree that what names.
func requireUnchanged(t *testing.T, what string, before, after hostSnapshot) {
	t.Helper()
	for _, line := range diffSnapshots(before, after) {
		t.Errorf("%s changed: %s", what, line)
	}
}

func diffSnapshots(before, after hostSnapshot) []string {
	var out []string
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: removed (was %s)", p, b))
		case a != b:
			out = append(out, fmt.Sprintf("%s: was %s, now %s", p, b, a))
		}
	}
	for p, a := range after {
		if _, ok := before[p]; !ok {
			out = append(out, fmt.Sprintf("%s: appeared: %s", p, a))
		}
	}
	sort.Strings(out)
	return out
}
