// Command union9p serves a union of host directories (overlayfs semantics)
// over 9P2000.L, and mounts it in the host or in QEMU guests.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// Exit codes: 1 for a failure (including bad layers or addresses), 2 for a
// command line that cannot be parsed. Commands that follow another
// convention (the mount helpers) return their own codes with cli.Exit.
const (
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	app := &cli.App{
		Name:  "union9p",
		Usage: "serve a union of host directories over 9P2000.L",
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:    "log-level",
				Value:   "info",
				EnvVars: []string{"UNION9P_LOG_LEVEL"},
				Usage:   "least severe messages logged to stderr: debug, info, warn or error",
			},
		},
		Before: func(c *cli.Context) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
				return cli.Exit(fmt.Sprintf("union9p: --log-level %q: want debug, info, warn or error", c.String("log-level")), exitUsage)
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
			return nil
		},
		Commands: []*cli.Command{
			serveCommand(),
			mountCommand(),
			mountServeCommand(),
			guestMountCommand(),
			guestRelayCommand(),
			qemuCommand(),
			qemuCourierCommand(),
			qemuVirtfsCommand(),
			qemuVirtiofsCommand(),
			qemuVirtiofsWorkerCommand(),
			lsCommand(),
			tenantCommand(),
		},
		DisableSliceFlagSeparator: true, // paths may contain commas
		OnUsageError:              usageError,
		ExitErrHandler: func(c *cli.Context, err error) {
			if err == nil {
				return
			}
			if _, ok := err.(cli.ExitCoder); ok {
				cli.HandleExitCoder(err)
				return
			}
			fmt.Fprintln(os.Stderr, "union9p:", err)
			os.Exit(exitFailure)
		},
	}
	app.Commands = append(app.Commands, toolCommands()...) // tools.go
	app.EnableBashCompletion = true                        // for `union9p completion` (docs.go)
	for _, cmd := range app.Commands {
		if cmd.OnUsageError == nil {
			cmd.OnUsageError = usageError
		}
	}
	if err := app.Run(os.Args); err != nil {
		// Parse errors before any command ran (unknown command or flag).
		fmt.Fprintln(os.Stderr, "union9p:", err)
		os.Exit(exitUsage)
	}
}

// usageError makes a flag parsing error exit with exitUsage.
func usageError(c *cli.Context, err error, isSubcommand bool) error {
	return cli.Exit("union9p: "+strings.TrimPrefix(err.Error(), "flag provided but not defined: ")+
		"\nRun 'union9p help' for usage.", exitUsage)
}
