package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/union9p/union9p/test/bench/guest/internal/record"
	"github.com/union9p/union9p/test/internal/vmhost"
)

// console receives the guest's serial console and the servers' stderr:
// it logs everything, collects the guest program's records and reports
// progress on stderr (everything, when verbose).
type console struct {
	vmhost.Console
	verbose bool

	mu   sync.Mutex // guards the fields below (line runs on the writer's side)
	tail []string   // the last lines, for error messages

	results []record.Result
	info    map[string]string
	errs    []string // error records and malformed ones
	done    bool
}

// tailLines is how many console lines an error message shows.
const tailLines = 30

func newConsole(log io.Writer, verbose bool) *console {
	c := &console{verbose: verbose, info: map[string]string{}}
	c.Console = vmhost.Console{Log: log, Line: c.line}
	return c
}

func (c *console) flush() { c.Flush() }

func (c *console) line(l string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tail = append(c.tail, l)
	if len(c.tail) > tailLines {
		c.tail = c.tail[1:]
	}
	if c.verbose {
		fmt.Fprintln(os.Stderr, l)
	}
	r, ok, err := record.Parse(l)
	switch {
	case err != nil:
		c.errs = append(c.errs, err.Error())
	case !ok:
		return
	case r.Kind == record.KindResult:
		c.results = append(c.results, r.Result)
		progress("%s on %s, round %d: %.2fs", r.Result.Workload, r.Result.Side, r.Result.Round+1, r.Result.Seconds)
	case r.Kind == record.KindInfo:
		c.info[r.Key] = r.Text
	case r.Kind == record.KindError:
		c.errs = append(c.errs, r.Text)
		progress("guest: %s", r.Text)
	case r.Kind == record.KindDone:
		c.done = true
	}
}

// outcome returns what the guest reported and, if the run is
// incomplete, why: the results taken so far are returned all the same,
// for a report marked incomplete.
func (c *console) outcome() ([]record.Result, map[string]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(c.errs) > 0:
		return c.results, c.info, fmt.Errorf("the guest reported: %s", strings.Join(c.errs, "; "))
	case !c.done:
		return c.results, c.info, fmt.Errorf("the guest stopped before finishing; last console lines:\n  %s", strings.Join(c.tail, "\n  "))
	}
	return c.results, c.info, nil
}
