package main

import (
	"os"

	"github.com/schollz/progressbar/v3"
)

// progress draws a progress bar on stderr for the layer tools: only when
// stderr is a terminal and --quiet is not given, so that pipes and logs
// get nothing. Totals are unknown in advance (counting first would read
// the tree twice), so it shows files and bytes done and the rate.
type progress struct {
	bar   *progressbar.ProgressBar
	files int
}

// newProgress returns nil (no bar) when none should be drawn.
func newProgress(quiet bool, what string) *progress {
	if quiet || !isTerminal(os.Stderr) {
		return nil
	}
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("files"),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
	)
	return &progress{bar: bar}
}

// Add implements layertool.Progress.
func (p *progress) Add(files int, bytes int64) {
	p.files += files
	p.bar.Add64(bytes)
}

// done removes the bar.
func (p *progress) done() {
	if p != nil {
		p.bar.Finish()
	}
}
