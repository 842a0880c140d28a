package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/union9p/union9p/p9srv"
	"github.com/union9p/union9p/qemu"
	"github.com/union9p/union9p/union"
	"github.com/urfave/cli/v2"
)

// mountHelperName is the name under which mount(8) runs a helper for
// `mount -t union9p`: /sbin/mount.union9p, a symlink to this binary.
const mountHelperName = "mount.union9p"

// init turns the mount(8) helper calling convention,
//
//	mount.union9p SPEC DIR [-sfnv] [-o OPTIONS] [-t TYPE]
//
// into `union9p mount [--fake] -o OPTIONS SPEC DIR` before the command line
// is parsed. It changes nothing when the binary runs under another name.
func init() {
	if filepath.Base(os.Args[0]) == mountHelperName {
		os.Args = mountHelperArgs(os.Args)
	}
}

// mountHelperArgs rewrites a mount(8) helper argv (see init).
func mountHelperArgs(argv []string) []string {
	out := []string{argv[0], "mount"}
	var pos []string
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == "-o" && i+1 < len(argv):
			i++
			out = append(out, "-o", argv[i])
		case a == "-t" && i+1 < len(argv):
			i++ // the type is ours by definition
		case strings.HasPrefix(a, "-") && len(a) > 1:
			// -s sloppy, -n no mtab, -v verbose: nothing to do;
			// -f fake: do everything but the mount.
			if strings.Contains(a, "f") {
				out = append(out, "--fake")
			}
		default:
			pos = append(pos, a)
		}
	}
	return append(out, pos...)
}

// mountOptions is a parsed `-o` list: the union's layers in overlayfs
// syntax, generic mount flags, and 9p client options passed through.
type mountOptions struct {
	union union.Options
	flags uintptr
	nineP []string
}

// parseMountOptions splits overlayfs-style options (lowerdir=A:B,
// upperdir=U, workdir=W) from the rest. Lower layers are listed topmost
// first, as for overlayfs; '\:' and '\,' escape a colon or comma in a path.
func parseMountOptions(opts []string) (mountOptions, error) {
	var m mountOptions
	defaultFeatures(&m.union)
	var rest []string
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		if ok, err := applyFeatureOption(&m.union, k, v); ok {
			if err != nil {
				return m, err
			}
			continue
		}
		switch k {
		case "lowerdir":
			m.union.Lowers = splitEscaped(v, ':')
		case "upperdir":
			m.union.Upper = unescape(v)
		case "workdir":
			m.union.Workdir = unescape(v)
		default:
			rest = append(rest, o)
		}
	}
	if len(m.union.Lowers) == 0 {
		return m, errors.New("no lowerdir= option")
	}
	if (m.union.Upper == "") != (m.union.Workdir == "") {
		return m, errors.New("upperdir= and workdir= go together")
	}
	m.flags, m.nineP = qemu.SplitMountOptions(rest)
	if m.union.Upper == "" {
		m.flags |= syscall.MS_RDONLY
	}
	return m, nil
}

// splitOptionList splits a comma-separated option string, honouring '\,'.
func splitOptionList(s string) []string {
	var out []string
	for _, o := range splitRaw(s, ',') {
		if o != "" {
			out = append(out, o)
		}
	}
	return out
}

// splitEscaped splits s at sep, except where sep is preceded by a
// backslash, and removes the escapes.
func splitEscaped(s string, sep byte) []string {
	var out []string
	for _, p := range splitRaw(s, sep) {
		out = append(out, unescape(p))
	}
	return out
}

// splitRaw splits at unescaped sep, keeping escapes in the parts.
func splitRaw(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountCommand is `union9p mount -o OPTIONS SPEC DIR`, also run by
// mount(8) as mount.union9p for `mount -t union9p`. It starts a server for
// the union in a background child (`union9p mount-serve`) connected to the
// kernel through a socketpair, mounts it with trans=fd and returns 0 once
// the mount is usable. The child exits by itself when the kernel unmounts
// and the connection closes.
func mountCommand() *cli.Command {
	return &cli.Command{
		Name:      "mount",
		Usage:     "mount a union with the kernel's 9p client (mount(8) helper mount.union9p)",
		ArgsUsage: "SPEC DIR",
		Description: `Options are overlayfs's (lowerdir=A:B,upperdir=U,workdir=W; lowers topmost
first; without upperdir the mount is read-only), generic mount options (ro,
nosuid, noatime, ...) and 9p client options, passed through (msize, cache,
access, posixacl, ...). redirect_dir=on|follow|off (default on) says whether
directories with lower parts can be renamed (on) or answer EXDEV so that mv
copies them; metacopy=on|off (default off) whether a chown, chmod, utimes or
xattr change of a lower file copies its metadata only. SPEC is only a name
shown in /proc/mounts.
Example: mount -t union9p -o lowerdir=/base,upperdir=/u,workdir=/w,cache=mmap base /mnt
(with /sbin/mount.union9p a symlink to union9p).`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "options", Aliases: []string{"o"}, Usage: "comma-separated mount options"},
			&cli.BoolFlag{Name: "fake", Usage: "check the options and the layers, but do not mount"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return cli.Exit("mount: need SPEC and DIR", 1)
			}
			var opts []string
			for _, v := range c.StringSlice("options") {
				opts = append(opts, splitOptionList(v)...)
			}
			m, err := parseMountOptions(opts)
			if err != nil {
				return cli.Exit("mount.union9p: "+err.Error(), 1)
			}
			if err := mountUnion(c.Args().Get(0), c.Args().Get(1), m, c.Bool("fake")); err != nil {
				return cli.Exit("mount.union9p: "+err.Error(), 32)
			}
			return nil
		},
	}
}

// mountUnion starts the server child, waits until it has opened the union
// and mounts its connection on dir.
func mountUnion(spec, dir string, m mountOptions, fake bool) error {
	serverEnd, kernelEnd, err := qemu.Socketpair()
	if err != nil {
		return err
	}
	defer serverEnd.Close()
	defer kernelEnd.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer statusR.Close()

	args := []string{"mount-serve"}
	for _, l := range m.union.Lowers {
		args = append(args, "--lower", l)
	}
	if m.union.Upper != "" {
		args = append(args, "--upper", m.union.Upper, "--workdir", m.union.Workdir)
	}
	args = append(args, "-o", featureOptions(m.union))
	child := exec.Command("/proc/self/exe", args...)
	child.Args[0] = "union9p" // not mount.union9p, which init would rewrite
	child.ExtraFiles = []*os.File{serverEnd, statusW}
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		statusW.Close()
		return fmt.Errorf("start server: %w", err)
	}
	statusW.Close()
	serverEnd.Close()

	// The child writes "ready" once the union is open, or why it is not.
	status, _ := io.ReadAll(bufio.NewReader(statusR))
	if string(status) != "ready\n" {
		_ = child.Wait()
		msg := strings.TrimSpace(string(status))
		if msg == "" {
			msg = "server exited before it was ready"
		}
		return errors.New(msg)
	}
	// From here on the child outlives us; it is not waited for.
	_ = child.Process.Release()
	if fake {
		return nil // closing kernelEnd ends the child
	}

	data, err := qemu.NinePData(int(kernelEnd.Fd()), m.nineP)
	if err != nil {
		return err
	}
	return qemu.MountFD(spec, dir, m.flags, data)
}

// mountServeCommand is the hidden server child of `union9p mount`: it
// serves the union on fd 3 (its end of the socketpair) and reports
// readiness on fd 4.
func mountServeCommand() *cli.Command {
	return &cli.Command{
		Name:   "mount-serve",
		Hidden: true,
		Usage:  "internal: server of `union9p mount` (connection on fd 3, status on fd 4)",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "lower"},
			&cli.StringFlag{Name: "upper"},
			&cli.StringFlag{Name: "workdir"},
			&cli.StringFlag{Name: "options", Aliases: []string{"o"}},
		},
		Action: func(c *cli.Context) error {
			conn, status := os.NewFile(3, "conn"), os.NewFile(4, "status")
			opts := union.Options{Lowers: c.StringSlice("lower"), Upper: c.String("upper"), Workdir: c.String("workdir")}
			defaultFeatures(&opts)
			for _, o := range splitOptionList(c.String("options")) {
				k, v, _ := strings.Cut(o, "=")
				if ok, err := applyFeatureOption(&opts, k, v); !ok || err != nil {
					kmsg("union9p mount-serve: bad option %q", o)
					return cli.Exit("", 1)
				}
			}
			if err := serveMountConn(conn, status, opts); err != nil {
				kmsg("union9p mount-serve: %v", err)
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}

// serveMountConn opens the union, reports "ready" (or the error) on status
// and serves one 9P connection on conn until the kernel closes it.
func serveMountConn(conn, status *os.File, opts union.Options) error {
	u, err := union.Open(opts)
	if err == nil {
		var srv *p9srv.Server
		if srv, err = p9srv.New(p9srv.Config{Union: u}); err == nil {
			err = confineMountServer(opts)
		}
		if err == nil {
			fmt.Fprint(status, "ready\n")
			status.Close()
			err = srv.ServeConn(conn)
			u.Close()
			return err
		}
		u.Close()
	}
	fmt.Fprintln(status, err)
	status.Close()
	return err
}
