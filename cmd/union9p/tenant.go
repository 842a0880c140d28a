package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/union9p/union9p/p9srv/control"
	"github.com/union9p/union9p/union/tenant"
	"github.com/urfave/cli/v2"
)

// defaultControl is where `union9p serve --tenants` puts its control
// socket unless told otherwise.
const defaultControl = "/run/union9p/control.sock"

// tenantCommand groups the commands that manage the tenants of a running
// multi-tenant server through its control socket.
func tenantCommand() *cli.Command {
	controlFlag := &cli.StringFlag{
		Name:    "control",
		Value:   defaultControl,
		EnvVars: []string{"UNION9P_CONTROL"},
		Usage:   "control socket of the running server",
	}
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"}
	named := func(name, usage, done string, op func(*control.Client, string) error) *cli.Command {
		return &cli.Command{
			Name:      name,
			Usage:     usage,
			ArgsUsage: "NAME",
			Flags:     []cli.Flag{controlFlag},
			Action: func(c *cli.Context) error {
				name, err := tenantArg(c)
				if err != nil {
					return err
				}
				return withControl(c, func(cl *control.Client) error {
					if err := op(cl, name); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "tenant %s %s\n", name, done)
					return nil
				})
			},
		}
	}
	return &cli.Command{
		Name:  "tenant",
		Usage: "list, add, reset or remove the tenants of a running server, or set their quotas",
		Description: "Talks to the control socket of a running multi-tenant server (owner-only:\n" +
			"run as the server's user or root). Flags go before NAME. A tenant NAME is\n" +
			"1-255 letters, digits, '_', '-' or '.', starting with a letter or digit.",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "show every tenant: usage, quota, connections",
				Flags: []cli.Flag{controlFlag, jsonFlag},
				Action: func(c *cli.Context) error {
					if c.NArg() != 0 {
						return cli.Exit("union9p tenant list: takes no arguments", exitUsage)
					}
					return withControl(c, func(cl *control.Client) error {
						list, err := cl.List()
						if err != nil {
							return err
						}
						if c.Bool("json") {
							return printJSON(c.App.Writer, list)
						}
						printTenants(c.App.Writer, list)
						return nil
					})
				},
			},
			named("add", "create a tenant (an empty upper over the shared lowers)", "added", (*control.Client).Add),
			named("reset", "factory reset: close its connections and empty its upper", "reset", (*control.Client).Reset),
			named("remove", "close its connections and delete the tenant with its upper", "removed", (*control.Client).Remove),
			{
				Name:      "quota",
				Usage:     "show or set a tenant's quota",
				ArgsUsage: "NAME",
				Description: "With no flag, prints the tenant's quota. --bytes takes a size (suffix K, M, G, T:\n" +
					"powers of 1024), --inodes a count; 0 or 'unlimited' for no limit. A limit not\n" +
					"given keeps its current value. --default returns the tenant to the server's\n" +
					"--quota.",
				Flags: []cli.Flag{
					controlFlag,
					&cli.StringFlag{Name: "bytes", Usage: "limit of the bytes (apparent size) in its upper"},
					&cli.StringFlag{Name: "inodes", Usage: "limit of the inodes in its upper"},
					&cli.BoolFlag{Name: "default", Usage: "use the server's default quota"},
					jsonFlag,
				},
				Action: runQuota,
			},
		},
	}
}

// tenantArg returns the one NAME argument, checked before any connection
// so that a bad name is reported as such even with no server running.
func tenantArg(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		for _, a := range c.Args().Slice() {
			if strings.HasPrefix(a, "-") {
				return "", cli.Exit(fmt.Sprintf("union9p tenant %s: %s after NAME: flags go before NAME (union9p tenant %s [flags] NAME)", c.Command.Name, a, c.Command.Name), exitUsage)
			}
		}
		return "", cli.Exit(fmt.Sprintf("union9p tenant %s: want one tenant NAME", c.Command.Name), exitUsage)
	}
	name := c.Args().First()
	if err := tenant.ValidName(name); err != nil {
		return "", cli.Exit(fmt.Sprintf("union9p tenant %s: %v", c.Command.Name, err), exitUsage)
	}
	return name, nil
}

// withControl runs fn on a connection to the control socket; errors come
// back as the server words them.
func withControl(c *cli.Context, fn func(*control.Client) error) error {
	cl, err := control.Dial(c.String("control"))
	if err == nil {
		defer cl.Close()
		err = fn(cl)
	}
	if err != nil {
		return cli.Exit(fmt.Sprintf("union9p tenant %s: %v", c.Command.Name, err), exitFailure)
	}
	return nil
}

func runQuota(c *cli.Context) error {
	name, err := tenantArg(c)
	if err != nil {
		return err
	}
	setBytes, setInodes, toDefault := c.IsSet("bytes"), c.IsSet("inodes"), c.Bool("default")
	if toDefault && (setBytes || setInodes) {
		return cli.Exit("union9p tenant quota: --default takes no --bytes or --inodes", exitUsage)
	}
	var q tenant.Quota
	if setBytes {
		if q.Bytes, err = parseSize(c.String("bytes")); err != nil {
			return cli.Exit(fmt.Sprintf("union9p tenant quota: --bytes: %v", err), exitUsage)
		}
	}
	if setInodes {
		if q.Inodes, err = parseCount(c.String("inodes")); err != nil {
			return cli.Exit(fmt.Sprintf("union9p tenant quota: --inodes: %v", err), exitUsage)
		}
	}
	return withControl(c, func(cl *control.Client) error {
		current := func() (tenant.Info, error) {
			list, err := cl.List()
			if err != nil {
				return tenant.Info{}, err
			}
			for _, in := range list {
				if in.Name == name {
					return in, nil
				}
			}
			return tenant.Info{}, fmt.Errorf("tenant %s: %w", name, tenant.ErrNotFound)
		}
		switch {
		case toDefault:
			if err := cl.SetQuota(name, nil); err != nil {
				return err
			}
		case setBytes || setInodes:
			if !setBytes || !setInodes {
				in, err := current()
				if err != nil {
					return err
				}
				if !setBytes {
					q.Bytes = in.Quota.Bytes
				}
				if !setInodes {
					q.Inodes = in.Quota.Inodes
				}
			}
			if err := cl.SetQuota(name, &q); err != nil {
				return err
			}
		}
		in, err := current()
		if err != nil {
			return err
		}
		if c.Bool("json") {
			return printJSON(c.App.Writer, in)
		}
		src := "its own"
		if !in.OwnQuota {
			src = "the server's default"
		}
		fmt.Fprintf(c.App.Writer, "tenant %s: quota %s, %s inodes (%s); using %s, %d inodes\n",
			name, sizeOrUnlimited(in.Quota.Bytes), countOrUnlimited(in.Quota.Inodes), src, humanSize(in.Usage.Bytes), in.Usage.Inodes)
		return nil
	})
}

// printTenants prints the human table of `tenant list`.
func printTenants(out io.Writer, list []tenant.Info) {
	if len(list) == 0 {
		fmt.Fprintln(out, "no tenants")
		return
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tUSED\tQUOTA\tINODES\tINODE QUOTA\tQUOTA FROM\tCONNECTIONS\tSTATE")
	for _, in := range list {
		from, state := "default", "ready"
		if in.OwnQuota {
			from = "tenant"
		}
		if in.Busy {
			state = "busy"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n", in.Name, humanSize(in.Usage.Bytes), sizeOrUnlimited(in.Quota.Bytes),
			in.Usage.Inodes, countOrUnlimited(in.Quota.Inodes), from, in.Connections, state)
	}
	w.Flush()
}

func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// humanSize prints n bytes in powers of 1024, exact below 1 KiB.
func humanSize(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}

func sizeOrUnlimited(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return humanSize(n)
}

func countOrUnlimited(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10)
}

// errBadSize is what parseSize and parseCount wrap.
var errBadSize = errors.New("want a number")

// parseSize reads a byte count: digits with an optional suffix K, M, G, T,
// P or E (powers of 1024, optionally followed by "iB" or "B"); 0 or
// "unlimited" is no limit.
func parseSize(s string) (int64, error) {
	if s == "unlimited" {
		return 0, nil
	}
	t := strings.TrimSuffix(strings.TrimSuffix(s, "B"), "i")
	shift := 0
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGTPE", t[n-1]&^0x20); i >= 0 {
			shift = 10 * (i + 1)
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || (shift > 0 && v > (1<<63-1)>>shift) {
		return 0, fmt.Errorf("%q: %w of bytes, e.g. 10G, 512M or 1048576", s, errBadSize)
	}
	return v << shift, nil
}

// parseCount reads an inode count; 0 or "unlimited" is no limit.
func parseCount(s string) (int64, error) {
	if s == "unlimited" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q: %w of inodes", s, errBadSize)
	}
	return v, nil
}
