package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// cleanups is a stack of undo steps (stop a server, unmount, detach a loop
// device, remove a directory) run in reverse order of registration. It is
// run once by the deferred call in run and, if a second signal arrives
// while the bench is still winding down, by the signal handler before the
// process exits; whichever comes first does the work.
type cleanups struct {
	mu    sync.Mutex
	steps []*cleanupStep
}

type cleanupStep struct {
	what string
	fn   func() error

	mu  sync.Mutex
	ran bool
}

// do runs the step unless it ran already; a second call returns nil.
func (s *cleanupStep) do() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ran {
		return nil
	}
	s.ran = true
	return s.fn()
}

// add registers fn, described by what for error messages. It returns a
// function that runs fn at once (and never again), for resources whose
// life ends before the bench does, such as a per-round mount.
func (c *cleanups) add(what string, fn func() error) (runNow func() error) {
	step := &cleanupStep{what: what, fn: fn}
	c.mu.Lock()
	c.steps = append(c.steps, step)
	c.mu.Unlock()
	return step.do
}

// run undoes every registered step not yet run, newest first, and reports
// failures on stderr; a failed step does not stop the others.
func (c *cleanups) run() {
	c.mu.Lock()
	steps := c.steps
	c.steps = nil
	c.mu.Unlock()
	for i := len(steps) - 1; i >= 0; i-- {
		if err := steps[i].do(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: cleanup: %s: %v\n", steps[i].what, err)
		}
	}
}

// withSignals returns a context cancelled on SIGINT, SIGTERM or SIGHUP so
// that the bench stops between operations and unwinds through its deferred
// cleanups. A second signal runs the cleanups from the handler and exits,
// for when a step blocks (a 1 GiB copy in the kernel).
func withSignals(parent context.Context, c *cleanups) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(os.Stderr, "bench: %v: stopping\n", s)
			cancel()
		case <-done:
			return
		}
		select {
		case <-sigs:
			fmt.Fprintln(os.Stderr, "bench: second signal: cleaning up and exiting")
			c.run()
			os.Exit(130)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}
