package main

import (
	"log/slog"
	"os"

	"github.com/union9p/union9p/cmd/union9p/internal/sandbox"
	"github.com/union9p/union9p/union"
	"github.com/urfave/cli/v2"
)

// sandboxFlag is --sandbox of the commands that run a server.
func sandboxFlag() cli.Flag {
	return &cli.StringFlag{Name: "sandbox", Value: "on", EnvVars: []string{"UNION9P_SANDBOX"},
		Usage: "confine the server once serving: `on` (Landlock to the layers, seccomp, fewer capabilities, where the kernel allows), log (seccomp logs instead of denying) or off"}
}

// confine applies the sandbox to a server of the union opened with
// layers; then runs the confinement test's probe (a no-op in production
// builds).
func confine(mode sandbox.Mode, layers union.Options, readOnly bool, log *slog.Logger) error {
	cfg := sandbox.Config{Mode: mode, ReadDirs: layers.Lowers, ReadOnly: readOnly || layers.Upper == "", Logger: log}
	if layers.Upper != "" {
		cfg.WriteDirs = []string{layers.Upper, layers.Workdir}
	}
	if err := sandbox.Apply(cfg); err != nil {
		return err
	}
	sandbox.Probe(log)
	return nil
}

// confineMountServer is confine for the server child of `union9p mount`,
// which has no flags of its own: UNION9P_SANDBOX=off or log set in its
// environment changes the mode. Its messages go to stderr, as the other
// server's.
func confineMountServer(layers union.Options) error {
	mode, err := sandbox.ParseMode(os.Getenv("UNION9P_SANDBOX"))
	if err != nil {
		return err
	}
	return confine(mode, layers, false, slog.Default())
}
