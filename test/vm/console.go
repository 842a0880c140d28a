package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/union9p/union9p/test/internal/vmhost"
)

// console receives the guest's serial console (and the server's stderr),
// logs all of it, shows result lines (or everything, verbose), and reads
// the guest's summary line. The counts come from that summary, not from
// counting PASS and FAIL lines: kernel messages on the same console can
// run into a line and hide it.
type console struct {
	vmhost.Console
	verbose  bool
	passed   int
	failed   int
	finished bool // the guest printed its summary line
}

func newConsole(log io.Writer, verbose bool) *console {
	c := &console{verbose: verbose}
	c.Console = vmhost.Console{Log: log, Line: c.line}
	return c
}

func (c *console) flush() { c.Flush() }

func (c *console) line(l string) {
	switch {
	case strings.HasPrefix(l, "PASS "), strings.HasPrefix(l, "FAIL "):
	case strings.HasPrefix(l, "guest: ") && strings.HasSuffix(l, " failed"):
		if _, err := fmt.Sscanf(l, "guest: %d passed, %d failed", &c.passed, &c.failed); err == nil {
			c.finished = true
		}
	case strings.HasPrefix(l, "DIFF "), strings.HasPrefix(l, "init:"), strings.HasPrefix(l, "guest: "),
		strings.Contains(l, "union9p"), strings.Contains(l, "panic"), strings.Contains(l, "Oops"):
	default:
		if !c.verbose {
			return
		}
	}
	fmt.Println(l)
}
