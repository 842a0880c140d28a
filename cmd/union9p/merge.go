package main

import (
	"fmt"

	"github.com/union9p/union9p/union/layertool"
	"github.com/urfave/cli/v2"
)

func mergeCommand() *cli.Command {
	return &cli.Command{
		Name:      "merge",
		Usage:     "fold the upper into a new base directory (or, with --in-place, into the single lower)",
		ArgsUsage: "[DEST]",
		Description: `Copies the merged tree (what clients see: owners, modes, times, xattrs, hard
links) into DEST, a new empty directory without any overlay markers: the new
base. The layers are locked as a server locks them and are not written.

--in-place folds the upper into the one lower directory itself instead:
whiteouts delete, opaque directories replace, objects move; then the upper
and work directory are emptied. It is the only way union9p ever writes a
lower layer, it is not atomic, and it needs --in-place spelled out.

Examples:
  union9p merge --lower /srv/base --upper /srv/vm1/upper --workdir /srv/vm1/work /srv/base-v2
  union9p merge -o lowerdir=/img/l2:/img/l1 /srv/flat
  union9p merge --in-place --lower /srv/base --upper /srv/vm1/upper --workdir /srv/vm1/work`,
		Flags: append(layerFlags(true),
			&cli.BoolFlag{Name: "in-place", Usage: "write the result into the single lower layer (it is changed!)"},
			quietFlag,
		),
		Action: func(c *cli.Context) error {
			l, err := parseLayers(c)
			if err != nil {
				return usageErr("merge", err.Error())
			}
			opts := layertool.MergeOptions{InPlace: c.Bool("in-place")}
			dest := c.Args().First()
			switch {
			case opts.InPlace && c.NArg() > 0:
				return usageErr("merge", "--in-place takes no DEST")
			case !opts.InPlace && c.NArg() != 1:
				return usageErr("merge", "want DEST (a new directory), or --in-place")
			}
			bar := newProgress(c.Bool("quiet"), "merge")
			if bar != nil {
				opts.Progress = bar
			}
			err = layertool.Merge(l, dest, opts)
			bar.done()
			if err != nil {
				return toolError("merge", err)
			}
			return nil
		},
	}
}

func vacuumCommand() *cli.Command {
	return &cli.Command{
		Name:  "vacuum",
		Usage: "drop copied-up objects that equal their lower ones",
		Description: `Removes from the upper the objects that a copy-up left equal to the lower
objects they hide (type, owner, mode, times, xattrs, data, link count), and
the directories left empty that equal theirs. The merged tree does not
change. Refused while a server serves the layers.

Examples:
  union9p vacuum --lower /srv/base --upper /srv/vm1/upper --workdir /srv/vm1/work
  union9p vacuum -o lowerdir=/srv/base,upperdir=/srv/vm1/upper,workdir=/srv/vm1/work --quiet`,
		Flags: append(layerFlags(true), quietFlag),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErr("vacuum", "unexpected argument "+c.Args().First())
			}
			l, err := parseLayers(c)
			if err != nil {
				return usageErr("vacuum", err.Error())
			}
			if l.Upper == "" {
				return usageErr("vacuum", "no upper directory: give --upper and --workdir")
			}
			var opts layertool.VacuumOptions
			bar := newProgress(c.Bool("quiet"), "vacuum")
			if bar != nil {
				opts.Progress = bar
			}
			st, err := layertool.Vacuum(l, opts)
			bar.done()
			if err != nil {
				return toolError("vacuum", err)
			}
			if !c.Bool("quiet") {
				fmt.Fprintf(c.App.ErrWriter, "vacuum: removed %d objects\n", st.Removed)
			}
			return nil
		},
	}
}

func resetCommand() *cli.Command {
	return &cli.Command{
		Name:  "reset",
		Usage: "empty the upper and work directory (factory reset)",
		Description: `Removes everything in the upper and the work directory, so that the union
shows its lowers as they are, and gives the upper's root the attributes of
the top lower's root. Refused while a server serves the layers, and when
the work directory holds anything a union does not put there.

Examples:
  union9p reset --lower /srv/base --upper /srv/vm1/upper --workdir /srv/vm1/work
  union9p reset -o lowerdir=/srv/base,upperdir=/srv/vm1/upper,workdir=/srv/vm1/work`,
		Flags: layerFlags(true),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErr("reset", "unexpected argument "+c.Args().First())
			}
			l, err := parseLayers(c)
			if err != nil {
				return usageErr("reset", err.Error())
			}
			if l.Upper == "" || l.Workdir == "" {
				return usageErr("reset", "give --upper and --workdir")
			}
			if err := layertool.Reset(l); err != nil {
				return toolError("reset", err)
			}
			return nil
		},
	}
}
