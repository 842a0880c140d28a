// Package record is the line format in which the in-guest benchmark's
// guest program (test/bench/guest/inguest) reports to its host program
// (test/bench/guest) over the guest's serial console.
//
// The console also carries kernel messages and anything else the guest
// prints, so every record is one line starting with [Prefix]; other lines
// are not records. Fields are separated by single spaces; the last field
// of an info or error record is free text.
//
//	guestbench: result WORKLOAD SIDE ROUND SECONDS
//	guestbench: info KEY TEXT...
//	guestbench: error TEXT...
//	guestbench: done
package record

import (
	"fmt"
	"strconv"
	"strings"
)

// Prefix starts every record line.
const Prefix = "guestbench: "

// Kind says what a record carries.
type Kind string

// The kinds of records.
const (
	KindResult Kind = "result" // one timed run of a workload on one side
	KindInfo   Kind = "info"   // a fact about the guest (kernel, mount options, ...)
	KindError  Kind = "error"  // the guest gave up; the text says why
	KindDone   Kind = "done"   // the guest finished every round
)

// Result is one timed run of a workload on one side (mount) in one round.
type Result struct {
	Workload string // key, e.g. "tar"
	Side     string // e.g. "union9p"
	Round    int
	Seconds  float64
}

// Record is one parsed line.
type Record struct {
	Kind   Kind
	Result Result // for KindResult
	Key    string // for KindInfo
	Text   string // for KindInfo and KindError
}

// FormatResult returns the line for r, without a newline.
func FormatResult(r Result) string {
	return fmt.Sprintf("%s%s %s %s %d %.6f", Prefix, KindResult, word(r.Workload), word(r.Side), r.Round, r.Seconds)
}

// FormatInfo returns an info line, without a newline. key must be one
// word; text may have spaces but no newline (newlines become spaces).
func FormatInfo(key, text string) string {
	return fmt.Sprintf("%s%s %s %s", Prefix, KindInfo, word(key), oneLine(text))
}

// FormatError returns an error line, without a newline.
func FormatError(text string) string {
	return fmt.Sprintf("%s%s %s", Prefix, KindError, oneLine(text))
}

// FormatDone returns the line that ends a complete run.
func FormatDone() string { return Prefix + string(KindDone) }

// Parse reads one console line. It reports false for lines that are not
// records (kernel messages, other output) and returns an error for lines
// that start with [Prefix] but are malformed. Trailing carriage returns and
// spaces (the serial console's line ends) are ignored.
func Parse(line string) (Record, bool, error) {
	line = strings.TrimRight(line, "\r\n ")
	i := strings.Index(line, Prefix)
	if i < 0 {
		return Record{}, false, nil
	}
	rest := line[i+len(Prefix):]
	kind, args, _ := strings.Cut(rest, " ")
	switch Kind(kind) {
	case KindResult:
		f := strings.Fields(args)
		if len(f) != 4 {
			return Record{}, true, fmt.Errorf("result record %q: want WORKLOAD SIDE ROUND SECONDS", rest)
		}
		round, err := strconv.Atoi(f[2])
		if err != nil {
			return Record{}, true, fmt.Errorf("result record %q: round: %w", rest, err)
		}
		secs, err := strconv.ParseFloat(f[3], 64)
		if err != nil {
			return Record{}, true, fmt.Errorf("result record %q: seconds: %w", rest, err)
		}
		return Record{Kind: KindResult, Result: Result{Workload: f[0], Side: f[1], Round: round, Seconds: secs}}, true, nil
	case KindInfo:
		key, text, _ := strings.Cut(args, " ")
		if key == "" {
			return Record{}, true, fmt.Errorf("info record %q: no key", rest)
		}
		return Record{Kind: KindInfo, Key: key, Text: text}, true, nil
	case KindError:
		return Record{Kind: KindError, Text: args}, true, nil
	case KindDone:
		return Record{Kind: KindDone}, true, nil
	}
	return Record{}, true, fmt.Errorf("record %q: unknown kind %q", rest, kind)
}

// word makes s a single field: spaces would shift the fields after it.
func word(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Join(strings.Fields(s), "_")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
