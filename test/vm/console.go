package main

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
)

// console receives the guest's serial console (and the server's stderr),
// logs all of it, shows result lines (or everything, verbose), and counts
// the guest's PASS and FAIL lines.
type console struct {
	mu       sync.Mutex
	log      io.Writer
	verbose  bool
	partial  []byte
	passed   int
	failed   int
	finished bool // the guest printed its summary line
}

func newConsole(log io.Writer, verbose bool) *console {
	return &console{log: log, verbose: verbose}
}

// ansi matches the terminal escapes that the firmware prints.
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[a-zA-Z]|\x1bc`)

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log.Write(p)
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		c.line(string(c.partial[:i]))
		c.partial = c.partial[i+1:]
	}
	return len(p), nil
}

// flush handles a last line without a newline.
func (c *console) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.partial) > 0 {
		c.line(string(c.partial))
		c.partial = nil
	}
}

func (c *console) line(l string) {
	l = strings.TrimRight(ansi.ReplaceAllString(l, ""), "\r ")
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
