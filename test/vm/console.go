package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/union9p/union9p/test/internal/vmhost"
)

// console receives the guest's serial console (and the server's stderr),
// logs all of it, shows result lines (or everything, verbose), and counts
// the guest's PASS and FAIL lines.
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
	case strings.HasPrefix(l, "PASS "):
		c.passed++
	case strings.HasPrefix(l, "FAIL "):
		c.failed++
	case strings.HasPrefix(l, "guest: ") && strings.HasSuffix(l, " failed"):
		c.finished = true
	case strings.HasPrefix(l, "DIFF "), strings.HasPrefix(l, "init:"), strings.HasPrefix(l, "guest: "),
		strings.Contains(l, "union9p"), strings.Contains(l, "panic"), strings.Contains(l, "Oops"):
	default:
		if !c.verbose {
			return
		}
	}
	fmt.Println(l)
}
