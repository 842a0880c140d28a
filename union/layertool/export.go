package layertool

import (
	"archive/tar"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/union9p/union9p/whiteout"
	"golang.org/x/sys/unix"
)

// Export writes the upper layer as an OCI image layer: a tar in PAX format
// whose whiteouts are ".wh.NAME" files and whose opaque directories hold
// ".wh..wh..opq". Owners, modes (setuid included), nanosecond mtimes,
// xattrs (SCHILY.xattr.*, private ones left out) and hard links within the
// upper are kept; sparse files stay sparse (export_sparse.go); owners kept as mapped xattrs are exported as the owners
// clients see. Sockets cannot be held by tar and are skipped (counted).
//
// The output is deterministic: entries in byte order of their paths, no
// atime, ctime or user names, so the same upper gives the same bytes (with
// Mtime set, whatever its times). Export only reads the layers.

// ExportOptions tune Export.
type ExportOptions struct {
	// Compression: "" (none), "gzip" or "zstd".
	Compression string
	// Mtime, when not zero, replaces every object's mtime (reproducible
	// builds, like SOURCE_DATE_EPOCH).
	Mtime    time.Time
	Progress Progress
}

// ExportStats counts what Export wrote.
type ExportStats struct {
	Entries int   // tar entries, markers included
	Bytes   int64 // file data
	Skipped []string
}

// Export writes the upper of l to w.
func Export(l Layers, w io.Writer, opts ExportOptions) (ExportStats, error) {
	// The lowers are read only for what the upper points at: renamed
	// directories and metadata-only copies (export_follow.go).
	s, err := openStack(Layers{Lowers: l.Lowers, Upper: l.Upper, UserXattr: l.UserXattr}, true)
	if err != nil {
		return ExportStats{}, err
	}
	defer s.close()
	out, finish, err := compressor(w, opts.Compression)
	if err != nil {
		return ExportStats{}, err
	}
	e := &exporter{s: s, out: newTarOut(out, 256<<10), opts: opts, links: map[fileKey]string{},
		buf: make([]byte, 256<<10)}
	root, err := openDirAt(s.upper.fd, ".")
	if err != nil {
		return e.stats, err
	}
	// The root's own attributes show as the merged root's: "./" first.
	var st unix.Stat_t
	if err = unix.Fstat(root, &st); err == nil {
		err = e.object(s.upper.fd, ".", ".", &st, nil, false)
	}
	if err == nil {
		err = e.dir("", root)
	}
	unix.Close(root)
	if err == nil {
		e.out.zeros(2 * 512) // the end of the archive: two zero blocks
		err = e.out.Flush()
	}
	if err == nil {
		err = finish()
	}
	return e.stats, err
}

// copyFd copies up to size bytes from the descriptor fd to w.
func copyFd(w io.Writer, fd int, size int64, buf []byte) (int64, error) {
	var n int64
	for n < size {
		k, err := unix.Read(fd, buf[:min(int64(len(buf)), size-n)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if k == 0 {
			break
		}
		if _, err := w.Write(buf[:k]); err != nil {
			return n, err
		}
		n += int64(k)
	}
	return n, nil
}

// compressor wraps w in the named compression; finish flushes it.
func compressor(w io.Writer, name string) (io.Writer, func() error, error) {
	switch name {
	case "", "none":
		return w, func() error { return nil }, nil
	case "gzip", "gz":
		// No name or time in the gzip header: deterministic.
		zw := gzip.NewWriter(w)
		return zw, zw.Close, nil
	case "zstd", "zst":
		zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		return zw, zw.Close, nil
	}
	return nil, nil, fmt.Errorf("unknown compression %q (want gzip or zstd)", name)
}

type fileKey struct{ dev, ino uint64 }

type exporter struct {
	s     *stack
	out   *tarOut // whole entries, written in large writes
	hdr   []byte  // a header being encoded (reused)
	opts  ExportOptions
	links map[fileKey]string // first path of each hard-linked inode
	stats ExportStats
	buf   []byte
	// xattrNames receives a file's xattr names; when there are some,
	// readMetaFd lists them again (rare: upper files seldom have xattrs).
	xattrNames [256]byte
}

// dir writes the entries of the upper directory fd at tar path p ("" for
// the root, else "a/b/").
func (e *exporter) dir(p string, fd int) error {
	names, err := readNames(fd)
	if err != nil {
		return fmt.Errorf("/%s: %w", p, err)
	}
	for _, name := range names {
		cp := p + name
		var st unix.Stat_t
		if err := lstatRaw(fd, name, &st); err != nil {
			return fmt.Errorf("/%s: %w", cp, err)
		}
		if e.s.isWhiteout(fd, name, &st) {
			if err := e.marker(p+whiteout.OCIPrefix+name, &st); err != nil {
				return err
			}
			continue
		}
		if fileType(&st) == unix.S_IFDIR {
			redirect, err := e.s.upperRedirect(fd, name)
			if err != nil {
				return fmt.Errorf("/%s: %w", cp, err)
			}
			if redirect != "" {
				if err := e.renamed(p, fd, name, &st); err != nil {
					return err
				}
				continue
			}
		}
		if err := e.object(fd, name, cp, &st, nil, true); err != nil {
			return err
		}
		if fileType(&st) == unix.S_IFDIR {
			sub, err := openDirAt(fd, name)
			if err != nil {
				return fmt.Errorf("/%s: %w", cp, err)
			}
			if e.s.isOpaque(e.s.upper, sub) {
				if err := e.marker(cp+"/"+whiteout.OCIOpaque, &st); err != nil {
					unix.Close(sub)
					return err
				}
			}
			err = e.dir(cp+"/", sub)
			unix.Close(sub)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *exporter) mtime(st *unix.Stat_t) time.Time {
	if !e.opts.Mtime.IsZero() {
		return e.opts.Mtime.UTC()
	}
	return time.Unix(st.Mtim.Unix()).UTC()
}

// marker writes an empty OCI marker file.
func (e *exporter) marker(name string, st *unix.Stat_t) error {
	h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, ModTime: e.mtime(st), Format: tar.FormatPAX}
	if err := e.header(h); err != nil {
		return fmt.Errorf("/%s: %w", name, err)
	}
	e.stats.Entries++
	report(e.opts.Progress, 1, 0)
	return nil
}

// metaFd is readMetaFd for the regular file open at fd, with one raw
// call for the common file that has no xattrs at all.
func (e *exporter) metaFd(fd int, st *unix.Stat_t) (meta, error) {
	n, err := rawFlistxattr(fd, e.xattrNames[:])
	if (err == nil && n == 0) || err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
		return statMeta(st), nil
	}
	if err != nil && err != unix.ERANGE {
		return meta{}, err
	}
	return readMetaFd(fd, st)
}

// header writes the header blocks of h.
func (e *exporter) header(h *tar.Header) error {
	var err error
	if e.hdr, err = appendHeader(e.hdr[:0], h); err != nil {
		return err
	}
	_, err = e.out.Write(e.hdr)
	return err
}

// data writes size bytes of the file open at fd and the padding after
// them, reading straight into the output buffer; it returns how many
// bytes the file gave (fewer: it shrank, and the output is unusable).
func (e *exporter) data(fd int, size int64) (int64, error) {
	var n int64
	for n < size {
		r := e.out.room(int(min(size-n, 1<<30)))
		if e.out.err != nil {
			return n, e.out.err
		}
		k, err := rawRead(fd, r[:min(int64(len(r)), size-n)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if k == 0 {
			return n, nil
		}
		e.out.commit(k)
		n += int64(k)
	}
	e.out.zeros(int(blockPad(size)))
	return n, e.out.err
}

// object writes the header (and data) of the object name in dirfd; data,
// when not nil, holds a regular file's bytes (a metadata-only copy's lower
// file). With findMeta, an upper regular file is asked whether it is a
// metadata-only copy (resolved as one directly below the upper's dirfd).
func (e *exporter) object(dirfd int, name, p string, st *unix.Stat_t, data *dataSource, findMeta bool) error {
	var m meta
	var err error
	f := -1
	if fileType(st) == unix.S_IFREG && !e.seenLink(st) {
		// One open serves the xattrs, the metacopy marker (among the
		// names its xattr list gives anyway) and the data. Block counts
		// cannot tell a metadata-only copy: an xattr block outside the
		// inode counts too.
		if f, err = openFileFd(dirfd, name); err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
		defer rawClose(f)
		if m, err = e.metaFd(f, st); err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
		if data == nil && findMeta && st.Size > 0 && slices.Contains(m.private, string(e.s.ns)+"metacopy") {
			if data, err = e.metacopyOf(strings.TrimSuffix(p, name), dirfd, name); err != nil {
				return fmt.Errorf("/%s: %w", p, err)
			}
			if data != nil {
				defer data.close()
			}
		}
	} else {
		m, err = readMeta(dirfd, name, st)
	}
	if err != nil {
		return fmt.Errorf("/%s: %w", p, err)
	}
	h := &tar.Header{
		Name:    p,
		Mode:    int64(m.mode & 0o7777),
		Uid:     int(m.uid),
		Gid:     int(m.gid),
		ModTime: e.mtime(st),
		Format:  tar.FormatPAX,
	}
	if len(m.xattrs) > 0 {
		h.PAXRecords = make(map[string]string, len(m.xattrs))
		for _, x := range m.xattrs {
			h.PAXRecords["SCHILY.xattr."+x.name] = string(x.value)
		}
	}
	var isData bool
	if fileType(st) != unix.S_IFDIR && st.Nlink > 1 {
		// Hard links of any type (symbolic links, FIFOs too) point at the
		// first path of their inode in this walk's order.
		key := fileKey{st.Dev, st.Ino}
		if first, ok := e.links[key]; ok {
			h.Typeflag, h.Linkname, h.Mode = tar.TypeLink, first, 0
			h.PAXRecords = nil
			return e.write(h, -1, p, st)
		}
		e.links[key] = p
	}
	switch fileType(st) {
	case unix.S_IFDIR:
		h.Typeflag, h.Name = tar.TypeDir, p+"/"
		if p == "." {
			h.Name = "./"
		}
	case unix.S_IFLNK:
		h.Typeflag, h.Linkname = tar.TypeSymlink, m.target
	case unix.S_IFCHR, unix.S_IFBLK:
		h.Typeflag = tar.TypeChar
		if fileType(st) == unix.S_IFBLK {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(m.rdev)), int64(unix.Minor(m.rdev))
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	case unix.S_IFSOCK:
		e.stats.Skipped = append(e.stats.Skipped, "/"+p)
		return nil
	case unix.S_IFREG:
		h.Typeflag, h.Size, isData = tar.TypeReg, st.Size, true
	}
	if !isData {
		f = -1
	} else if data != nil {
		df, err := openFileFd(data.dir, data.name)
		if err != nil {
			return fmt.Errorf("/%s: lower data: %w", p, err)
		}
		defer unix.Close(df)
		dst := *st
		dst.Blocks = data.st.Blocks // the holes are the lower file's
		return e.write(h, df, p, &dst)
	}
	return e.write(h, f, p, st)
}

// seenLink reports whether st is a hard link already exported.
func (e *exporter) seenLink(st *unix.Stat_t) bool {
	if st.Nlink < 2 {
		return false
	}
	_, ok := e.links[fileKey{st.Dev, st.Ino}]
	return ok
}

// write writes the header h and, with a descriptor f (not -1), the
// file's bytes.
func (e *exporter) write(h *tar.Header, f int, p string, st *unix.Stat_t) error {
	if f >= 0 {
		segs, err := dataSegments(f, st.Size, st.Blocks)
		if err != nil {
			return fmt.Errorf("/%s: finding holes: %w", p, err)
		}
		if segs != nil {
			return e.writeSparse(h, f, p, segs)
		}
	}
	if err := e.header(h); err != nil {
		return fmt.Errorf("/%s: %w", p, err)
	}
	e.stats.Entries++
	if f >= 0 {
		n, err := e.data(f, st.Size)
		if err == nil && n != st.Size {
			err = fmt.Errorf("file shrank while exported (%d of %d bytes)", n, st.Size)
		}
		if err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
		e.stats.Bytes += n
		report(e.opts.Progress, 1, n)
		return nil
	}
	report(e.opts.Progress, 1, 0)
	return nil
}
