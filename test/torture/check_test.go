package torture

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/union9p/union9p/test/vm/fixture"
	"golang.org/x/sys/unix"
)

// lowerManifest records every byte and every piece of metadata of the
// lowers (times, inode numbers and private xattrs included).
func (l *layers) lowerManifest() ([]string, error) {
	var all []string
	for _, d := range []string{l.lowerTop, l.lowerBottom} {
		m, err := fixture.Manifest(d, fixture.ManifestOptions{Times: true, Private: true, DirNlink: true})
		if err != nil {
			return nil, err
		}
		for _, line := range m {
			all = append(all, filepath.Base(d)+"/"+line)
		}
	}
	return all, nil
}

// checkWorkdir: after a restart the work directory holds only the empty
// directories the server keeps there.
func (l *layers) checkWorkdir() error {
	var left []string
	err := filepath.Walk(l.work, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(l.work, p)
		if rel == "." || (fi.IsDir() && (rel == "work" || rel == "index")) {
			return nil
		}
		left = append(left, rel)
		return nil
	})
	if err == nil && len(left) > 0 {
		err = fmt.Errorf("work directory leftovers after restart: %s", strings.Join(left, ", "))
	}
	return err
}

// checkSealed: every file whose fsync was answered has exactly its data.
func (l *layers) checkSealed(sealed map[string]string) error {
	var bad []string
	for p, want := range sealed {
		f, err := os.Open(filepath.Join(l.upper, p))
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if got := hex.EncodeToString(h.Sum(nil)); err != nil || got != want {
			bad = append(bad, fmt.Sprintf("%s: data %s, fsync'd %s (%v)", p, got[:12], want[:12], err))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("fsync'd files lost data: %s", strings.Join(bad, "; "))
	}
	return nil
}

var movedSmall = regexp.MustCompile(`^mv-(s\d+)-`)

// checkWhole: no copy in the upper is half-made. A big file is only ever
// changed in metadata, so its copy has all of the lower's data, owner and
// xattrs; a small file is only overwritten in place, so its copy (also
// after a rename) is as long as the lower file; the copied-up tree
// directories keep their owner, mode and xattrs.
func (l *layers) checkWhole() error {
	var bad []string
	for name, want := range l.bigHash {
		p := filepath.Join(l.upper, name)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err == unix.ENOENT {
			continue
		} else if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(data)
		if got := hex.EncodeToString(h[:]); got != want || st.Uid != 1000 || st.Gid != 1000 {
			bad = append(bad, fmt.Sprintf("%s: size %d uid %d gid %d data %s (lower %s)", name, st.Size, st.Uid, st.Gid, got[:12], want[:12]))
		}
		if v, err := getxattr(p, "user.origin"); err != nil || v != name {
			bad = append(bad, fmt.Sprintf("%s: user.origin %q, %v", name, v, err))
		}
	}
	ents, _ := os.ReadDir(filepath.Join(l.upper, "small"))
	for _, e := range ents {
		orig := e.Name()
		if m := movedSmall.FindStringSubmatch(orig); m != nil {
			orig = m[1]
		}
		size, ok := l.smallSize["small/"+orig]
		if !ok || !e.Type().IsRegular() {
			continue // a whiteout
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		if fi.Size() != size {
			bad = append(bad, fmt.Sprintf("small/%s: size %d, lower %d", e.Name(), fi.Size(), size))
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(l.upper, "tree", "d*", "sub"))
	for _, d := range dirs {
		var st unix.Stat_t
		if err := unix.Lstat(d, &st); err != nil {
			return err
		}
		v, err := getxattr(d, "user.dir")
		if st.Uid != 1000 || st.Mode&0o7777 != 0o750 || err != nil || v != "sub" {
			bad = append(bad, fmt.Sprintf("%s: uid %d mode %o user.dir %q %v", d, st.Uid, st.Mode&0o7777, v, err))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("half-made copies: %s", strings.Join(bad, "; "))
	}
	return nil
}

// checkOverlay: the kernel's overlayfs, mounting the upper and the lowers
// read-only (the upper as the top lower: nothing is written), shows the
// same tree as union9p serves on sock.
func (l *layers) checkOverlay(sock string) error {
	mnt := filepath.Join(l.root, "ovl")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	opts := "lowerdir=" + l.upper + ":" + l.lowerTop + ":" + l.lowerBottom
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, opts); err != nil {
		return fmt.Errorf("mount overlay %s: %w", opts, err)
	}
	host, herr := hostView(mnt)
	if err := unix.Unmount(mnt, 0); err != nil {
		return fmt.Errorf("unmount overlay: %w", err)
	}
	if herr != nil {
		return herr
	}
	union, err := viewUnion(sock)
	if err != nil {
		return fmt.Errorf("union9p view: %w", err)
	}
	return fixture.DiffError(fixture.Diff(host, union, "overlayfs", "union9p"))
}

func getxattr(p, name string) (string, error) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
