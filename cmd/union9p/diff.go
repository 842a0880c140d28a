package main

import (
	"bufio"
	"encoding/json"
	"os"

	"github.com/union9p/union9p/union/layertool"
	"github.com/urfave/cli/v2"
)

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:  "diff",
		Usage: "list what the upper layer changes in the merged tree (A added, C changed, D deleted)",
		Description: `One line per path, as docker diff prints them: A for a path the lowers do
not show, C for a path whose object the upper holds, D for a path the upper
deletes (a deleted directory is one line). With --content, objects that
were copied up but equal the lower ones (data, attributes, xattrs) are left
out. diff only reads; on layers a server is writing it may see a copy-up in
progress.

Examples:
  union9p diff --lower /srv/base --upper /srv/vm1/upper
  union9p diff -o lowerdir=/img/l2:/img/l1,upperdir=/srv/vm1/upper --content
  union9p diff --lower /srv/base --upper /srv/vm1/upper --json | jq -r '.[].path'`,
		Flags: append(layerFlags(false),
			&cli.BoolFlag{Name: "content", Usage: "leave out copied-up objects equal to the lower ones"},
			&cli.BoolFlag{Name: "json", Usage: `print a JSON array of {"kind":"A|C|D","path":"/..."}`},
		),
		Action: runDiff,
	}
}

func runDiff(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErr("diff", "unexpected argument "+c.Args().First())
	}
	l, err := parseLayers(c)
	if err != nil {
		return usageErr("diff", err.Error())
	}
	changes, err := layertool.Diff(l, layertool.DiffOptions{Content: c.Bool("content")})
	if err != nil {
		return toolError("diff", err)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	if c.Bool("json") {
		type line struct {
			Kind string `json:"kind"`
			Path string `json:"path"`
		}
		out := make([]line, len(changes))
		for i, ch := range changes {
			out[i] = line{string(ch.Kind), ch.Path}
		}
		enc := json.NewEncoder(w)
		return enc.Encode(out)
	}
	for _, ch := range changes {
		w.WriteString(ch.String())
		w.WriteByte('\n')
	}
	return nil
}
