package vmhost

import (
	"bytes"
	"io"
	"regexp"
	"strings"
	"sync"
)

// Console is an io.Writer for a guest's serial console (and the servers'
// stderr): it copies everything to Log and hands each complete line, with
// the firmware's terminal escapes and trailing CRs removed, to Line. Safe
// for concurrent writers; Line is called with the Console's lock held, one
// line at a time.
type Console struct {
	Log  io.Writer
	Line func(string)

	mu      sync.Mutex
	partial []byte
}

// ansi matches the terminal escapes that the firmware prints.
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[a-zA-Z]|\x1bc`)

func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Log.Write(p)
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		c.emit(string(c.partial[:i]))
		c.partial = c.partial[i+1:]
	}
	return len(p), nil
}

// Flush hands on a last line that has no newline.
func (c *Console) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.partial) > 0 {
		c.emit(string(c.partial))
		c.partial = nil
	}
}

func (c *Console) emit(l string) {
	c.Line(strings.TrimRight(ansi.ReplaceAllString(l, ""), "\r "))
}
