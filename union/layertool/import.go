package layertool

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// Import unpacks an OCI image layer (tar, optionally gzip or zstd, found by
// its magic) into an empty directory, which can then serve as a lower or
// an upper layer. By default the markers are written in overlayfs's format
// so that the kernel's overlayfs reads them too: ".wh.NAME" becomes a 0/0
// device whiteout (root) or an xattr whiteout (unprivileged, with
// user.overlay.*), ".wh..wh..opq" the opaque xattr. FormatOCI keeps the
// ".wh." files as they are.
//
// The archive is untrusted. Names that are absolute or contain "..",
// entries whose parent is a symbolic link or not a directory, hard links
// whose target is outside the directory, and device nodes when not root
// are refused with an error naming the entry; nothing is created outside
// the directory, as every call is made relative to a directory descriptor
// with O_NOFOLLOW. Memory stays bounded by the directory count, not the
// entry count. Blocks of zeros are written as holes, so sparse files stay
// sparse.
//
// As root, owners are set on the host; unprivileged, they are kept in the
// mapped-xattr format union reads (user.virtfs.*), with host modes the
// server can use.

// Import formats.
const (
	FormatOverlay = "overlay"
	FormatOCI     = "oci"
)

// ImportOptions tune Import.
type ImportOptions struct {
	Format    string // FormatOverlay (default) or FormatOCI
	UserXattr bool   // markers in user.overlay.* even as root
	Progress  Progress
}

// ImportStats counts what Import wrote.
type ImportStats struct {
	Entries int
	Bytes   int64
}

// Import unpacks r into dir, which must be empty or not exist yet.
func Import(r io.Reader, dir string, opts ImportOptions) (ImportStats, error) {
	switch opts.Format {
	case "":
		opts.Format = FormatOverlay
	case FormatOverlay, FormatOCI:
	default:
		return ImportStats{}, fmt.Errorf("unknown format %q (want overlay or oci)", opts.Format)
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return ImportStats{}, err
	}
	lk, err := lockForWriting(Layers{}, dir)
	if err != nil {
		return ImportStats{}, err
	}
	defer lk.release()
	root, err := openRootDir(dir)
	if err != nil {
		return ImportStats{}, err
	}
	defer unix.Close(root)
	if names, err := readNames(root); err != nil {
		return ImportStats{}, err
	} else if len(names) > 0 {
		return ImportStats{}, fmt.Errorf("%s is not empty (import unpacks into an empty directory)", dir)
	}
	in, err := decompressor(r)
	if err != nil {
		return ImportStats{}, err
	}
	im := &importer{
		opts:       opts,
		root:       root,
		ns:         Layers{UserXattr: opts.UserXattr}.namespace(),
		privileged: os.Geteuid() == 0,
		dirs:       newDirCache(root),
		buf:        make([]byte, 256<<10),
		fresh:      newFreshFiles(root),
	}
	im.wformat = whiteout.XattrWhiteouts
	if im.privileged {
		im.wformat = whiteout.DeviceWhiteouts
	}
	defer im.dirs.close()
	tr := tar.NewReader(in)
	for {
		im.dirs.trim()
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return im.stats, fmt.Errorf("archive after %d entries: %w", im.stats.Entries, describeTarErr(err))
		}
		if err := im.entry(h, tr); err != nil {
			return im.stats, fmt.Errorf("entry %q: %w", h.Name, describeTarErr(err))
		}
		im.stats.Entries++
	}
	if err := im.finishDirs(); err != nil {
		return im.stats, err
	}
	return im.stats, nil
}

func describeTarErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated archive: %w", err)
	}
	return err
}

// decompressor recognizes gzip and zstd by their magic numbers.
func decompressor(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return br, nil
}

type importer struct {
	opts       ImportOptions
	root       int
	ns         whiteout.Namespace
	wformat    whiteout.Format
	privileged bool
	dirs       *dirCache
	stats      ImportStats
	buf        []byte
	fresh      *freshFiles // what a created file has already (import_fresh.go)
	// dirTimes are the directories whose times are set once their
	// contents are written (writing into a directory changes its mtime).
	dirTimes []dirTime
}

type dirTime struct {
	path  string
	mtime time.Time
}

// cleanName checks an archive path and splits it into its components.
func cleanName(name string) ([]string, error) {
	if strings.HasPrefix(name, "/") {
		return nil, errors.New("absolute path refused")
	}
	var out []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return nil, errors.New(`path with ".." refused`)
		}
		out = append(out, c)
	}
	return out, nil
}

func (im *importer) entry(h *tar.Header, r io.Reader) error {
	comps, err := cleanName(h.Name)
	if err != nil {
		return err
	}
	im.fresh.noteHeader(h)
	if len(comps) == 0 {
		// The root itself: its attributes apply to dir.
		if h.Typeflag == tar.TypeDir {
			im.dirs.forget(nil) // its mode or group may change
			im.dirTimes = append(im.dirTimes, dirTime{"", h.ModTime})
			return im.setMeta(im.root, ".", h, true)
		}
		return errors.New("not a directory")
	}
	parent, err := im.dirs.open(comps[:len(comps)-1])
	if err != nil {
		return err
	}
	name := comps[len(comps)-1]
	if im.opts.Format == FormatOverlay {
		if hidden, ok := whiteout.IsOCIMarker(name); ok {
			return im.marker(parent, comps, hidden)
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		var st unix.Stat_t
		if err := lstatAt(parent, name, &st); err == nil {
			if fileType(&st) != unix.S_IFDIR {
				return errors.New("exists and is not a directory")
			}
		} else if err := unix.Mkdirat(parent, name, 0o700); err != nil {
			return err
		}
		// Its mode and group change: new files in it may get another.
		im.dirs.forget(comps)
		if err := im.setMeta(parent, name, h, false); err != nil {
			return err
		}
		im.dirTimes = append(im.dirTimes, dirTime{strings.Join(comps, "/"), h.ModTime})
		return nil
	case tar.TypeReg, tar.TypeChar, tar.TypeBlock, tar.TypeFifo, tar.TypeSymlink, tar.TypeLink:
	default:
		return fmt.Errorf("unsupported entry type %q", h.Typeflag)
	}
	if err := im.create(parent, name, h, r); errors.Is(err, unix.EEXIST) {
		// A later entry replaces an earlier non-directory of that name.
		var st unix.Stat_t
		if err := lstatAt(parent, name, &st); err != nil {
			return err
		}
		if fileType(&st) == unix.S_IFDIR {
			return errors.New("a directory of that name exists")
		}
		if err := unix.Unlinkat(parent, name, 0); err != nil {
			return err
		}
		if err := im.create(parent, name, h, r); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if h.Typeflag == tar.TypeLink || h.Typeflag == tar.TypeReg {
		return nil // a link shares its target's attributes; a file set them through its fd
	}
	if err := im.setMeta(parent, name, h, false); err != nil {
		return err
	}
	t := unix.NsecToTimespec(h.ModTime.UnixNano())
	return unix.UtimesNanoAt(parent, name, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW)
}

// create makes the non-directory entry h as name in parent; EEXIST when
// the name is taken.
func (im *importer) create(parent int, name string, h *tar.Header, r io.Reader) error {
	switch h.Typeflag {
	case tar.TypeReg:
		return im.file(parent, name, h, r)
	case tar.TypeSymlink:
		return unix.Symlinkat(h.Linkname, parent, name)
	case tar.TypeLink:
		return im.link(parent, name, h)
	case tar.TypeFifo:
		return unix.Mkfifoat(parent, name, 0o600)
	case tar.TypeChar, tar.TypeBlock:
		if !im.privileged {
			return errors.New("device node refused: only root may create device nodes")
		}
		mode := uint32(unix.S_IFCHR)
		if h.Typeflag == tar.TypeBlock {
			mode = unix.S_IFBLK
		}
		return unix.Mknodat(parent, name, mode|0o600, int(unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))))
	}
	return fmt.Errorf("unsupported entry type %q", h.Typeflag)
}

// marker turns an OCI marker into overlayfs's format.
func (im *importer) marker(parent int, comps []string, hidden string) error {
	if hidden == "" { // .wh..wh..opq
		return whiteout.SetOpaque(parent, im.ns)
	}
	if err := checkName(hidden); err != nil {
		return err
	}
	var st unix.Stat_t
	if lstatAt(parent, hidden, &st) == nil {
		return fmt.Errorf("whiteout of %q, which this layer also holds", hidden)
	}
	if err := whiteout.Make(parent, hidden, im.wformat, im.ns); err != nil {
		return fmt.Errorf("make whiteout %q: %w", hidden, err)
	}
	return whiteout.NoteWhiteout(parent, im.wformat, im.ns)
}

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return fmt.Errorf("bad name %q", name)
	}
	return nil
}

// file writes a regular file's data, leaving blocks of zeros as holes,
// and sets its attributes through its descriptor.
func (im *importer) file(parent int, name string, h *tar.Header, r io.Reader) error {
	// The per-file calls are raw (raw.go). Created with its mode where
	// that is the mode it then has (import_fresh.go).
	perm, kept := im.fresh.createMode(im.hostFileMode(h))
	fd, err := rawOpenat(parent, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return err
	}
	defer rawClose(fd)
	var off, end int64 // end: where the last write ended
	for off < h.Size {
		n, err := io.ReadFull(r, im.buf[:min(int64(len(im.buf)), h.Size-off)])
		if n > 0 {
			w, werr := writeSparse(fd, im.buf[:n], off)
			if werr != nil {
				return werr
			}
			if w > 0 {
				end = w
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return fmt.Errorf("truncated archive: %d of %d bytes: %w", off, h.Size, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return err
		}
	}
	if end != off {
		if err := unix.Ftruncate(fd, off); err != nil { // a trailing hole
			return err
		}
	}
	if err := im.setMetaFd(fd, parent, name, h, kept); err != nil {
		return err
	}
	if err := rawFutimens(fd, unix.NsecToTimespec(h.ModTime.UnixNano())); err != nil {
		return err
	}
	im.stats.Bytes += off
	report(im.opts.Progress, 1, off)
	return nil
}

// writeSparse writes b at off into fd, skipping 4 KiB blocks of zeros. It
// returns the offset where its last write ended (0 if it wrote nothing).
func writeSparse(fd int, b []byte, off int64) (int64, error) {
	const blk = 4096
	var end int64
	for len(b) > 0 {
		n := min(blk, len(b))
		if !allZero(b[:n]) {
			// Write the run of non-zero blocks at once.
			for n < len(b) && !allZero(b[n:min(n+blk, len(b))]) {
				n = min(n+blk, len(b))
			}
			if err := rawPwriteAll(fd, b[:n], off); err != nil {
				return 0, err
			}
			end = off + int64(n)
		}
		b, off = b[n:], off+int64(n)
	}
	return end, nil
}

func rawPwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := rawPwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

func pwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.NativeEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// link makes a hard link to an earlier entry of the archive.
func (im *importer) link(parent int, name string, h *tar.Header) error {
	comps, err := cleanName(h.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", h.Linkname, err)
	}
	if len(comps) == 0 {
		return fmt.Errorf("hard link to the root refused")
	}
	src, err := im.dirs.open(comps[:len(comps)-1])
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", h.Linkname, err)
	}
	// Without AT_SYMLINK_FOLLOW a symbolic link is linked itself.
	if err := unix.Linkat(src, comps[len(comps)-1], parent, name, 0); err != nil {
		return fmt.Errorf("hard link to %q: %w", h.Linkname, err)
	}
	report(im.opts.Progress, 1, 0)
	return nil
}

// setMeta sets owner, mode and xattrs of name in parent from h.
func (im *importer) setMeta(parent int, name string, h *tar.Header, isRoot bool) error {
	isLink := h.Typeflag == tar.TypeSymlink
	if im.privileged {
		if err := unix.Fchownat(parent, name, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	if err := im.setXattrs(parent, name, h); err != nil {
		return err
	}
	if isLink {
		return nil
	}
	mode, err := im.mapOwner(parent, name, h, h.Typeflag == tar.TypeDir || isRoot)
	if err != nil {
		return err
	}
	return unix.Fchmodat(parent, name, mode, 0)
}

// setMetaFd is setMeta for a regular file open at fd, just created in
// parent; modeKept: it was created with the mode it is to have.
func (im *importer) setMetaFd(fd, parent int, name string, h *tar.Header, modeKept bool) error {
	if im.privileged && !im.fresh.ownerKept(im.dirs, parent, h.Uid, h.Gid) {
		if err := rawFchown(fd, h.Uid, h.Gid); err != nil {
			return err
		}
	}
	if len(h.PAXRecords) > 0 {
		if err := im.setXattrs(parent, name, h); err != nil {
			return err
		}
	}
	mode, err := im.mapOwner(parent, name, h, false)
	if err != nil {
		return err
	}
	if modeKept {
		return nil // as created
	}
	return rawFchmod(fd, mode)
}

// hostFileMode is the host mode mapOwner gives the regular file h.
func (im *importer) hostFileMode(h *tar.Header) uint32 {
	mode := uint32(h.Mode) & 0o7777
	if !im.privileged {
		mode |= 0o600
	}
	return mode
}

// setXattrs sets the archive's xattrs (SCHILY.xattr.*) but no overlay
// markers or mapped owners: those an archive is not trusted with.
func (im *importer) setXattrs(parent int, name string, h *tar.Header) error {
	for k, v := range h.PAXRecords {
		x, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || isPrivateXattr(x) {
			continue
		}
		if err := setXattr(parent, name, x, []byte(v)); err != nil {
			if err == unix.EPERM && !im.privileged {
				continue // trusted.* and security.* need root
			}
			return fmt.Errorf("xattr %s: %w", x, err)
		}
	}
	return nil
}

// mapOwner returns the host mode to set. Unprivileged, the owner and mode
// clients see go to the mapped xattrs and the host keeps a mode the server
// can use.
func (im *importer) mapOwner(parent int, name string, h *tar.Header, isDir bool) (uint32, error) {
	mode := uint32(h.Mode) & 0o7777
	if im.privileged || (h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir && !isDir) {
		// (Linux keeps no user.* xattrs on FIFOs or devices: those show
		// the server's owner.)
		return mode, nil
	}
	var b4 [4]byte
	for _, kv := range []struct {
		k string
		v uint32
	}{{"uid", uint32(h.Uid)}, {"gid", uint32(h.Gid)}, {"mode", mode}} {
		binary.NativeEndian.PutUint32(b4[:], kv.v)
		if err := setXattr(parent, name, mappedPrefix+kv.k, b4[:]); err != nil {
			return 0, fmt.Errorf("mapped owner: %w", err)
		}
	}
	mode |= 0o600
	if isDir {
		mode |= 0o700
	}
	return mode, nil
}

// finishDirs sets the directories' times, deepest first.
func (im *importer) finishDirs() error {
	for i := len(im.dirTimes) - 1; i >= 0; i-- {
		d := im.dirTimes[i]
		im.dirs.trim()
		parent, name := im.root, "."
		if d.path != "" {
			comps := strings.Split(d.path, "/")
			var err error
			if parent, err = im.dirs.open(comps[:len(comps)-1]); err != nil {
				return fmt.Errorf("%s: %w", d.path, err)
			}
			name = comps[len(comps)-1]
		}
		t := unix.NsecToTimespec(d.mtime.UnixNano())
		if err := unix.UtimesNanoAt(parent, name, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: %w", d.path, err)
		}
	}
	return nil
}

// dirCache holds descriptors of the directories entries go into, by path,
// so that an archive of many files in few directories walks each
// directory once. Missing parents are created (archives may omit them).
// It is bounded: trim, called between entries (never while a descriptor
// it returned is in use), empties it when full.
type dirCache struct {
	root int
	fds  map[string]int
	// groups: the group a new file gets in the directory open at the key
	// (the root or a descriptor of fds); see newFileGroup.
	groups map[int]int
}

const maxCachedDirs = 256

func newDirCache(root int) *dirCache {
	return &dirCache{root: root, fds: map[string]int{}, groups: map[int]int{}}
}

func (c *dirCache) trim() {
	if len(c.fds) > maxCachedDirs {
		c.close()
	}
}

func (c *dirCache) close() {
	for _, fd := range c.fds {
		c.closeFd(fd)
	}
	c.fds = map[string]int{}
}

func (c *dirCache) closeFd(fd int) {
	delete(c.groups, fd)
	unix.Close(fd)
}

// forget drops what the cache knows of the directory comps (its mode or
// group is about to change), closing its descriptor; of the root (no
// comps), its new files' group. Call between entries.
func (c *dirCache) forget(comps []string) {
	if len(comps) == 0 {
		delete(c.groups, c.root)
		return
	}
	key := strings.Join(comps, "/")
	if fd, ok := c.fds[key]; ok {
		delete(c.fds, key)
		c.closeFd(fd)
	}
}

// newFileGroup returns the group that a file created now in the directory
// open at fd (the root or a descriptor from open) gets: the directory's
// own when it is setgid, else egid. ok is false when fd cannot be statted.
func (c *dirCache) newFileGroup(fd, egid int) (gid int, ok bool) {
	if g, ok := c.groups[fd]; ok {
		return g, true
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return 0, false
	}
	gid = egid
	if st.Mode&unix.S_ISGID != 0 {
		gid = int(st.Gid)
	}
	c.groups[fd] = gid
	return gid, true
}

// open returns a descriptor of the directory comps below the root, owned
// by the cache. A component that is a symbolic link or not a directory is
// refused.
func (c *dirCache) open(comps []string) (int, error) {
	if len(comps) == 0 {
		return c.root, nil
	}
	key := strings.Join(comps, "/")
	if fd, ok := c.fds[key]; ok {
		return fd, nil
	}
	parent, err := c.open(comps[:len(comps)-1])
	if err != nil {
		return -1, err
	}
	name := comps[len(comps)-1]
	fd, err := openDirAt(parent, name)
	if err == unix.ENOENT {
		if err := unix.Mkdirat(parent, name, 0o755); err != nil && err != unix.EEXIST {
			return -1, fmt.Errorf("create parent %q: %w", key, err)
		}
		fd, err = openDirAt(parent, name)
	}
	if err == unix.ELOOP || err == unix.ENOTDIR {
		return -1, fmt.Errorf("parent %q is a symbolic link or not a directory: refused", key)
	}
	if err != nil {
		return -1, fmt.Errorf("parent %q: %w", key, err)
	}
	c.fds[key] = fd
	return fd, nil
}
