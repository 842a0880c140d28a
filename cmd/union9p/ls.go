package main

import (
	"fmt"
	"io"
	"net"

	"strings"

	"github.com/hugelgupf/p9/p9"
	"github.com/urfave/cli/v2"
)

// lsCommand is a small client for checking a running server by hand: it
// lists a directory of the union, or prints a file's size.
func lsCommand() *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Usage:     "list a directory of a running union9p server",
		ArgsUsage: "ADDR [PATH]",
		Description: "ADDR is unix:PATH or tcp:HOST:PORT, as given to serve --listen.\n" +
			"Prints one line per entry: type, size, name.",
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return cli.Exit("union9p ls: want ADDR [PATH]", exitUsage)
			}
			return runLs(c.App.Writer, c.Args().Get(0), c.Args().Get(1))
		},
	}
}

func runLs(out io.Writer, addr, path string) error {
	network, address, ok := strings.Cut(addr, ":")
	if !ok || (network != "unix" && network != "tcp") {
		return cli.Exit(fmt.Sprintf("union9p ls: address %q: want unix:PATH or tcp:HOST:PORT", addr), exitUsage)
	}
	conn, err := net.Dial(network, address)
	if err != nil {
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	client, err := p9.NewClient(conn)
	if err != nil {
		conn.Close()
		return fmt.Errorf("9P handshake with %s: %w", addr, err)
	}
	defer client.Close()
	root, err := client.Attach("")
	if err != nil {
		return fmt.Errorf("attach %s: %w", addr, err)
	}
	defer root.Close()
	var names []string
	for _, c := range strings.Split(path, "/") {
		if c != "" {
			names = append(names, c)
		}
	}
	_, f, err := root.Walk(names)
	if err != nil {
		return fmt.Errorf("%s: %w", "/"+strings.Join(names, "/"), err)
	}
	defer f.Close()
	_, _, attr, err := f.GetAttr(p9.AttrMaskAll)
	if err != nil {
		return err
	}
	if !attr.Mode.IsDir() {
		fmt.Fprintf(out, "%s %d %s\n", kindOf(attr.Mode), attr.Size, "/"+strings.Join(names, "/"))
		return nil
	}
	if _, _, err := f.Open(p9.ReadOnly); err != nil {
		return err
	}
	offset := uint64(0)
	for {
		ents, err := f.Readdir(offset, 64<<10)
		if err != nil {
			return err
		}
		if len(ents) == 0 {
			return nil
		}
		for _, e := range ents {
			offset = e.Offset
			if e.Name == "." || e.Name == ".." {
				continue
			}
			size := uint64(0)
			if _, ef, err := f.Walk([]string{e.Name}); err == nil {
				if _, _, a, err := ef.GetAttr(p9.AttrMaskAll); err == nil {
					size = a.Size
				}
				ef.Close()
			}
			fmt.Fprintf(out, "%s %d %s\n", dtKind(uint8(e.Type)), size, e.Name)
		}
	}
}

func kindOf(m p9.FileMode) string {
	switch {
	case m.IsDir():
		return "d"
	case m.IsSymlink():
		return "l"
	case m.IsRegular():
		return "-"
	}
	return "?"
}

// dtKind names a directory entry type: union9p puts the DT_* value there,
// as the Linux client expects.
func dtKind(dt uint8) string {
	switch dt {
	case 4:
		return "d"
	case 10:
		return "l"
	case 8:
		return "-"
	}
	return "?"
}
