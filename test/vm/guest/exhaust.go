package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/union9p/union9p/test/internal/guestutil"
	"golang.org/x/sys/unix"
)

// The "full" suite: a union whose upper is on a 6 MiB tmpfs, mounted with
// `mount -t union9p` (the server runs in the guest, so the guest sees its
// layers), filled through the guest kernel's 9p client.
const (
	fullMount = "/mnt/full"
	fullFS    = "/full"                 // the small tmpfs: upper and work
	fullLower = scratch + "/full-lower" // on the scratch disk: a 4 MiB file, a small one
	fullSize  = 6 << 20
	bigLower  = 4 << 20
)

// fullUpper checks what happens when the upper's filesystem is full: the
// writer gets ENOSPC, the server keeps serving, a copy-up that cannot fit
// fails with ENOSPC and leaves nothing behind (the name still shows the
// lower file, no copy in the upper, no leftovers in the work directory),
// and once space is freed the same copy-up and writes work.
func (r *runner) fullUpper() {
	lowerData := bytes.Repeat([]byte("lower big file\n"), bigLower/15)
	if !r.step("full", "mount", func() error {
		for _, d := range []string{fullFS, fullMount, fullLower} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		if err := unix.Mount("tmpfs", fullFS, "tmpfs", 0, fmt.Sprintf("size=%d", fullSize)); err != nil {
			return fmt.Errorf("mount tmpfs: %w", err)
		}
		for _, d := range []string{fullFS + "/u", fullFS + "/w"} {
			if err := os.Mkdir(d, 0o755); err != nil {
				return err
			}
		}
		if err := os.WriteFile(fullLower+"/big", lowerData, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(fullLower+"/small", []byte("small\n"), 0o644); err != nil {
			return err
		}
		return guestutil.Command("/bin/mount", "-t", "union9p", "-o",
			"lowerdir="+fullLower+",upperdir="+fullFS+"/u,workdir="+fullFS+"/w,"+mountOptions, "full", fullMount)
	}) {
		return
	}
	defer r.step("full", "unmount", func() error { return guestutil.UnmountAndWait(fullMount, "mount-serve") })

	r.step("full", "writer-gets-enospc", func() error {
		f, err := os.Create(fullMount + "/filler")
		if err != nil {
			return err
		}
		chunk := bytes.Repeat([]byte{'x'}, 64<<10)
		var werr error
		for i := 0; i < 2*fullSize/len(chunk) && werr == nil; i++ {
			_, werr = f.Write(chunk)
		}
		if werr == nil {
			werr = f.Sync()
		}
		cerr := f.Close()
		if werr == nil {
			werr = cerr
		}
		if !errors.Is(werr, unix.ENOSPC) {
			return fmt.Errorf("writing %d bytes into a %d-byte upper: %v, want ENOSPC", 2*fullSize, fullSize, werr)
		}
		return nil
	})
	r.step("full", "still-serving", func() error {
		if got, err := os.ReadFile(fullMount + "/small"); err != nil || string(got) != "small\n" {
			return fmt.Errorf("read of a lower file while full: %q, %v", got, err)
		}
		ents, err := os.ReadDir(fullMount)
		if err != nil || len(ents) != 3 {
			return fmt.Errorf("listing while full: %d entries, %v (want big, filler, small)", len(ents), err)
		}
		return nil
	})
	r.step("full", "copyup-enospc-leaves-nothing", func() error {
		f, err := os.OpenFile(fullMount+"/big", os.O_RDWR, 0)
		if err == nil {
			f.Close()
			return errors.New("open for write of a 4 MiB lower file on a full upper succeeded")
		}
		if !errors.Is(err, unix.ENOSPC) {
			return fmt.Errorf("copy-up on a full upper: %v, want ENOSPC", err)
		}
		if got, err := os.ReadFile(fullMount + "/big"); err != nil || !bytes.Equal(got, lowerData) {
			return fmt.Errorf("after the failed copy-up the union shows %d bytes, %v (want the lower's %d)", len(got), err, len(lowerData))
		}
		if _, err := os.Lstat(fullFS + "/u/big"); !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("a failed copy-up left upper/big: %v", err)
		}
		return workClean(fullFS + "/w")
	})
	r.step("full", "recovers-after-rm", func() error {
		if err := os.Remove(fullMount + "/filler"); err != nil {
			return err
		}
		f, err := os.OpenFile(fullMount+"/big", os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("copy-up after space was freed: %w", err)
		}
		_, err = f.WriteAt([]byte("UPPER"), 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write after space was freed: %w", err)
		}
		got, err := os.ReadFile(fullFS + "/u/big")
		if err != nil || len(got) != len(lowerData) || string(got[:5]) != "UPPER" || !bytes.Equal(got[5:], lowerData[5:]) {
			return fmt.Errorf("upper/big after the copy-up: %d bytes, %v", len(got), err)
		}
		if err := os.WriteFile(fullMount+"/after", []byte("ok\n"), 0o644); err != nil {
			return fmt.Errorf("create after space was freed: %w", err)
		}
		return workClean(fullFS + "/w")
	})
}

// workClean fails if the work directory holds anything but the empty
// directories the server keeps there.
func workClean(work string) error {
	var left []string
	err := filepath.Walk(work, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(work, p)
		if rel == "." || (fi.IsDir() && (rel == "work" || rel == "index")) {
			return nil
		}
		left = append(left, rel)
		return nil
	})
	if err == nil && len(left) > 0 {
		err = fmt.Errorf("work directory leftovers: %v", left)
	}
	return err
}
