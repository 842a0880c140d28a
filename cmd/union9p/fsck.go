package main

import (
	"fmt"

	"github.com/union9p/union9p/union/layertool"
	"github.com/urfave/cli/v2"
)

func fsckCommand() *cli.Command {
	return &cli.Command{
		Name:  "fsck",
		Usage: "check and repair an upper layer and its work directory",
		Description: `Reports, one line each: leftovers in the work directory, whiteouts over
nothing, overlay markers in the other xattr namespace, redirect xattrs that
point outside the layers or nowhere, origin xattrs that cannot be parsed or
name no lower object, metacopy files without lower data, and mapped-xattr
owners that cannot be parsed. -n (the default) changes nothing; -y repairs.
Refused while a server serves the layers. Exit status as fsck's: 0 clean,
1 problems fixed, 4 problems left uncorrected, 8 an error.

Examples:
  union9p fsck -n --lower /srv/base --upper /srv/vm1/upper --workdir /srv/vm1/work
  union9p fsck -y -o lowerdir=/srv/base,upperdir=/srv/vm1/upper,workdir=/srv/vm1/work`,
		Flags: append(layerFlags(true),
			&cli.BoolFlag{Name: "n", Usage: "check only, change nothing (the default)"},
			&cli.BoolFlag{Name: "y", Usage: "repair every problem found"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErr("fsck", "unexpected argument "+c.Args().First())
			}
			if c.Bool("n") && c.Bool("y") {
				return usageErr("fsck", "-n and -y exclude each other")
			}
			l, err := parseLayers(c)
			if err != nil {
				return usageErr("fsck", err.Error())
			}
			if l.Upper == "" {
				return usageErr("fsck", "no upper directory: give --upper and --workdir")
			}
			res, err := layertool.Fsck(l, layertool.FsckOptions{Repair: c.Bool("y")})
			for _, p := range res.Problems {
				fmt.Fprintln(c.App.Writer, p)
			}
			if err != nil {
				return cli.Exit("union9p fsck: "+err.Error(), 8)
			}
			if code := res.ExitCode(); code != 0 {
				return cli.Exit("", code)
			}
			return nil
		},
	}
}
