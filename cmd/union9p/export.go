package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/union9p/union9p/union/layertool"
	"github.com/urfave/cli/v2"
)

func exportCommand() *cli.Command {
	flags := layerFlags(false)
	// -o is the output file here, as tar's -f; the layers' overlayfs
	// options are still accepted as --options.
	flags[2] = &cli.StringFlag{Name: "options", EnvVars: []string{"UNION9P_OPTIONS"},
		Usage: "overlayfs-style `OPTS`: upperdir=U (instead of --upper; -o is the output here)"}
	return &cli.Command{
		Name:      "export",
		Usage:     "write the upper layer as an OCI image layer tar",
		ArgsUsage: " ",
		Description: `Writes the upper as an OCI image layer: whiteouts as .wh.NAME files, opaque
directories with .wh..wh..opq, owners (mapped-xattr owners as clients see
them), modes, nanosecond mtimes, xattrs, hard links and sparse files (PAX
GNU sparse 1.0, which GNU tar unpacks with holes). A renamed directory
(overlay.redirect) is written as an opaque directory with its whole merged
content and a metadata-only copy with its lower data: an upper holding
them needs its lowers (--lower). The output is
deterministic: the same upper gives the same bytes; --mtime sets every
mtime for reproducible builds. Compression is chosen with --compress or by
the output name (.gz, .tgz, .zst).

Examples:
  union9p export --upper /srv/vm1/upper -o vm1-layer.tar
  union9p export --lower /srv/base --upper /srv/vm1/upper -o vm1-layer.tar
  union9p export --upper /srv/vm1/upper --mtime 2024-01-01T00:00:00Z -o layer.tar.zst
  union9p export --options upperdir=/srv/vm1/upper --compress gzip | ssh host union9p import - /srv/img/vm1`,
		Flags: append(flags,
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` (default: standard output)"},
			&cli.StringFlag{Name: "compress", Usage: "`ALG`: none, gzip or zstd (default: from the output name)"},
			&cli.StringFlag{Name: "mtime", Usage: "set every mtime to `TIME` (RFC 3339, or @SECONDS as SOURCE_DATE_EPOCH)"},
			quietFlag,
		),
		Action: runExport,
	}
}

func runExport(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErr("export", "unexpected argument "+c.Args().First()+" (the output file is -o FILE)")
	}
	l, err := parseLayers(c)
	if err != nil {
		return usageErr("export", err.Error())
	}
	if l.Upper == "" {
		return usageErr("export", "no upper directory: give --upper DIR")
	}
	var opts layertool.ExportOptions
	out := c.String("output")
	opts.Compression = c.String("compress")
	if opts.Compression == "" {
		switch {
		case strings.HasSuffix(out, ".gz") || strings.HasSuffix(out, ".tgz"):
			opts.Compression = "gzip"
		case strings.HasSuffix(out, ".zst"):
			opts.Compression = "zstd"
		}
	}
	if s := c.String("mtime"); s != "" {
		if opts.Mtime, err = parseMtime(s); err != nil {
			return usageErr("export", err.Error())
		}
	}
	var w io.Writer = os.Stdout
	var f *os.File
	if out != "" && out != "-" {
		if f, err = os.Create(out); err != nil {
			return toolError("export", err)
		}
		w = f
	} else if isTerminal(os.Stdout) {
		return usageErr("export", "refusing to write a tar to a terminal: give -o FILE or redirect")
	}
	bar := newProgress(c.Bool("quiet"), "export")
	if bar != nil {
		opts.Progress = bar
	}
	stats, err := layertool.Export(l, w, opts)
	bar.done()
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(out)
		}
	}
	if err != nil {
		return toolError("export", err)
	}
	for _, p := range stats.Skipped {
		slog.Warn("export: socket skipped (tar cannot hold sockets)", "path", p)
	}
	return nil
}

// parseMtime reads RFC 3339 or @SECONDS.
func parseMtime(s string) (time.Time, error) {
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("--mtime %q: want @SECONDS or RFC 3339", s)
		}
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("--mtime " + strconv.Quote(s) + ": want @SECONDS or RFC 3339 (2024-01-01T00:00:00Z)")
	}
	return t, nil
}

func importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "unpack an OCI image layer tar into a directory usable as a lower or upper",
		ArgsUsage: "LAYER.tar DIR",
		Description: `Unpacks an OCI image layer (tar, gzip or zstd) into DIR, which must be empty
or not exist. By default whiteouts and opaque markers are written in
overlayfs's format (0/0 devices and trusted.overlay.opaque as root, xattr
whiteouts and user.overlay.* otherwise) so that the kernel's overlayfs reads
DIR too; --format oci keeps the .wh. files. LAYER.tar "-" reads standard
input. Paths that escape DIR (.., absolute, through symbolic links), hard
links to outside and, unless root, device nodes are refused.

Examples:
  union9p import vm1-layer.tar /srv/img/vm1
  union9p import --format oci layer.tar.zst /srv/img/layer3
  union9p export --upper /srv/vm1/upper | union9p import - /srv/vm2/upper`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: layertool.FormatOverlay, Usage: "`FORMAT` of the markers: overlay or oci"},
			&cli.BoolFlag{Name: "userxattr", Usage: "write markers in user.overlay.* even as root"},
			quietFlag,
		},
		Action: runImport,
	}
}

func runImport(c *cli.Context) error {
	if c.NArg() != 2 {
		return usageErr("import", "want LAYER.tar DIR")
	}
	src, dir := c.Args().Get(0), c.Args().Get(1)
	var r io.Reader = os.Stdin
	if src != "-" {
		f, err := os.Open(src)
		if err != nil {
			return toolError("import", err)
		}
		defer f.Close()
		r = f
	}
	opts := layertool.ImportOptions{Format: c.String("format"), UserXattr: c.Bool("userxattr")}
	bar := newProgress(c.Bool("quiet"), "import")
	if bar != nil {
		opts.Progress = bar
	}
	_, err := layertool.Import(r, dir, opts)
	bar.done()
	if err != nil {
		return toolError("import", err)
	}
	return nil
}
