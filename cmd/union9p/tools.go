package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/union9p/union9p/union/layertool"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// The layer tools (diff, export, import, merge, vacuum, reset, fsck) take
// the layers as serve does: --lower/--upper/--workdir or overlayfs's
// -o lowerdir=A:B,upperdir=U,workdir=W.

// layerFlags are the flags naming the layers; withWorkdir adds --workdir
// for the tools that write (they lock it as a server does).
func layerFlags(withWorkdir bool) []cli.Flag {
	flags := []cli.Flag{
		&cli.StringSliceFlag{Name: "lower", EnvVars: []string{"UNION9P_LOWER"},
			Usage: "read-only lower `DIR`, repeatable, topmost first (A:B is also accepted)"},
		&cli.StringFlag{Name: "upper", EnvVars: []string{"UNION9P_UPPER"},
			Usage: "upper `DIR` (the writable layer)"},
		&cli.StringFlag{Name: "options", Aliases: []string{"o"}, EnvVars: []string{"UNION9P_OPTIONS"},
			Usage: "overlayfs-style `OPTS`: lowerdir=A:B,upperdir=U,workdir=W (instead of the flags)"},
		&cli.BoolFlag{Name: "userxattr",
			Usage: "overlay markers are in user.overlay.* (as overlayfs's userxattr; the default as non-root)"},
	}
	if withWorkdir {
		flags = append(flags, &cli.StringFlag{Name: "workdir", EnvVars: []string{"UNION9P_WORKDIR"},
			Usage: "work `DIR` of the upper (locked while the tool runs, as a server locks it)"})
	}
	return flags
}

// quietFlag turns the progress bar off (it is only drawn on a terminal).
var quietFlag = &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"}

// parseLayers reads the layer flags.
func parseLayers(c *cli.Context) (layertool.Layers, error) {
	var l layertool.Layers
	for _, s := range c.StringSlice("lower") {
		l.Lowers = append(l.Lowers, splitLowers(s)...)
	}
	l.Upper = c.String("upper")
	if c.IsSet("workdir") || c.String("workdir") != "" {
		l.Workdir = c.String("workdir")
	}
	if o := c.String("options"); o != "" {
		if len(l.Lowers) > 0 || l.Upper != "" || l.Workdir != "" {
			return l, errors.New("give the layers either with -o or with --lower/--upper/--workdir, not both")
		}
		for _, opt := range strings.Split(o, ",") {
			key, val, _ := strings.Cut(opt, "=")
			switch key {
			case "lowerdir":
				l.Lowers = splitLowers(val)
			case "upperdir":
				l.Upper = val
			case "workdir":
				l.Workdir = val
			case "userxattr":
				l.UserXattr = true
			case "":
			default:
				return l, fmt.Errorf("-o: unknown option %q (want lowerdir, upperdir, workdir, userxattr)", key)
			}
		}
	}
	if c.Bool("userxattr") {
		l.UserXattr = true
	}
	return l, nil
}

// toolError turns a tool's error into the exit status of a failure; a
// lock held by a server says so plainly.
func toolError(cmd string, err error) error {
	return cli.Exit("union9p "+cmd+": "+err.Error(), exitFailure)
}

func usageErr(cmd, msg string) error {
	return cli.Exit("union9p "+cmd+": "+msg, exitUsage)
}

// isTerminal reports whether f is a terminal (progress bars are drawn only
// there).
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// toolCommands are the layer tools, in the order help lists them.
func toolCommands() []*cli.Command {
	return []*cli.Command{
		diffCommand(),
		exportCommand(),
		importCommand(),
		mergeCommand(),
		vacuumCommand(),
		resetCommand(),
		fsckCommand(),
		manCommand(),
		completionCommand(),
	}
}
