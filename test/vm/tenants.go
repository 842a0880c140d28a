package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/union9p/union9p/qemu"
	"github.com/union9p/union9p/test/internal/vmhost"
)

// The two-guest part of the VM suite: ONE `union9p serve --tenants`
// process, two guests attached to it by `union9p qemu --tenant` (guest
// half: test/vm/guest/tenant.go). The writer (tenant "writer", over the
// guestfwd courier, --transport tcp) makes new files, whiteouts and
// copy-ups; the reader (tenant "reader", over the virtio-serial relay)
// checks it sees none of them; then `union9p tenant reset writer` runs
// while the writer is attached, which ends the writer's connection; the
// writer mounts again and sees the pristine base, and the reader's mount
// goes on untouched throughout.

// tenantBase is the shared lower of both tenants.
var tenantBase = map[string]string{"keep.txt": "base keep\n", "del.txt": "base del\n", "dir/edit.txt": "base edit\n"}

// tenantGuest is one guest of the two: its union9p qemu and console.
type tenantGuest struct {
	role   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	con    *vmhost.Console
	states chan string // "TENANT <role> <STATE>" lines, STATE only

	mu             sync.Mutex
	passed, failed int
	finished       bool
}

func (g *tenantGuest) line(l string) {
	switch {
	case strings.HasPrefix(l, "TENANT "+g.role+" "):
		select {
		case g.states <- strings.TrimPrefix(l, "TENANT "+g.role+" "):
		default:
		}
	case strings.HasPrefix(l, "guest: ") && strings.HasSuffix(l, " failed"):
		g.mu.Lock()
		if _, err := fmt.Sscanf(l, "guest: %d passed, %d failed", &g.passed, &g.failed); err == nil {
			g.finished = true
		}
		g.mu.Unlock()
	case strings.HasPrefix(l, "PASS "), strings.HasPrefix(l, "FAIL "), strings.HasPrefix(l, "tenant-"),
		strings.Contains(l, "union9p"), strings.Contains(l, "panic"), strings.Contains(l, "Oops"):
	default:
		return
	}
	fmt.Printf("[%s] %s\n", g.role, l)
}

// wait waits for the guest to reach state.
func (g *tenantGuest) wait(ctx context.Context, state string) error {
	for {
		select {
		case s := <-g.states:
			if s == state {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("guest %s never reached %s: %w", g.role, state, ctx.Err())
		}
	}
}

// goAhead lets the guest go on from its state.
func (g *tenantGuest) goAhead() error {
	_, err := io.WriteString(g.stdin, "go\n")
	return err
}

// runTenantGuests runs the two-guest part and records its host-side
// checks and the guests' results in t.
func runTenantGuests(ctx context.Context, union9p, kernel, initrd, dir string, verbose bool, t *tally) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	check := func(name string, err error) { t.check("tenants/"+name, err) }

	base := filepath.Join(dir, "base")
	for rel, content := range tenantBase {
		p := filepath.Join(base, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			check("setup", err)
			return
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			check("setup", err)
			return
		}
	}
	tenants, ctl := filepath.Join(dir, "tenants"), filepath.Join(dir, "control.sock")
	srvLog, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		check("setup", err)
		return
	}
	defer srvLog.Close()
	// One server: tenant writer is made by its listener, reader by
	// `union9p tenant add`; guests attach through the control socket's
	// attach socket.
	srv := exec.Command(union9p, "serve", "--lower", base, "--tenants", tenants, "--control", ctl,
		"--listen", "unix:"+filepath.Join(dir, "writer.sock")+",tenant=writer")
	srv.Stdout, srv.Stderr = srvLog, srvLog
	if err := srv.Start(); err != nil {
		check("server-start", err)
		return
	}
	srvExited := make(chan struct{})
	go func() { _ = srv.Wait(); close(srvExited) }()
	defer func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-srvExited:
		case <-time.After(10 * time.Second):
			_ = srv.Process.Kill()
			<-srvExited
		}
	}()
	err = waitFor(ctx, 15*time.Second, func() bool {
		fi, err := os.Stat(ctl + ".attach")
		return err == nil && fi.Mode()&os.ModeSocket != 0
	})
	check("server-start", err)
	if err != nil {
		return
	}
	tenantCmd := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, union9p, append([]string{"tenant", args[0], "--control", ctl}, args[1:]...)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("union9p tenant %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	_, err = tenantCmd("add", "reader")
	check("tenant-add-reader", err)

	guests := map[string]*tenantGuest{}
	for _, role := range []string{"writer", "reader"} {
		transport := map[string]string{"writer": "tcp", "reader": "serial"}[role]
		vm := qemu.Machine{Kernel: kernel, Initrd: initrd, MemoryMB: 384, Append: "union9p.tenant=" + role}
		args := append([]string{"qemu", "--transport", transport, "--control", ctl, "--name", "t", "--tenant", role, "--"}, vm.Args()...)
		g := &tenantGuest{role: role, states: make(chan string, 8)}
		g.cmd = exec.CommandContext(ctx, union9p, args...)
		g.cmd.Cancel = func() error { return g.cmd.Process.Signal(os.Interrupt) }
		g.cmd.WaitDelay = 15 * time.Second
		logf, err := os.Create(filepath.Join(dir, role+"-console.log"))
		if err != nil {
			check("setup", err)
			return
		}
		defer logf.Close()
		g.con = &vmhost.Console{Log: logf, Line: g.line}
		if verbose {
			g.con.Log = io.MultiWriter(logf, prefixWriter{role})
		}
		g.cmd.Stdout, g.cmd.Stderr = g.con, g.con
		if g.stdin, err = g.cmd.StdinPipe(); err != nil {
			check("setup", err)
			return
		}
		g.cmd.Env = append(os.Environ(), "TMPDIR="+dir)
		if err := g.cmd.Start(); err != nil {
			check("guest-start-"+role, err)
			return
		}
		guests[role] = g
	}
	w, r := guests["writer"], guests["reader"]
	exited := map[string]chan error{}
	for role, g := range guests {
		ch := make(chan error, 1)
		exited[role] = ch
		go func() { ch <- g.cmd.Wait() }()
	}

	// The script; a step that fails leaves the guests to their own
	// watchdogs and the timeout.
	steps := func() error {
		if err := w.wait(ctx, "WROTE"); err != nil {
			return err
		}
		if err := r.wait(ctx, "READY"); err != nil {
			return err
		}
		if err := r.goAhead(); err != nil {
			return err
		}
		if err := r.wait(ctx, "CHECKED"); err != nil {
			return err
		}
		upper := filepath.Join(tenants, "writer", "upper")
		check("writer-upper-has-its-changes", expectUpper(upper, "new.txt", "del.txt", "dir/edit.txt", "newdir"))
		check("writer-attached-before-reset", wantConnections(tenantCmd, "writer"))
		_, err := tenantCmd("reset", "writer")
		check("reset-writer-while-attached", err)
		check("writer-upper-empty-after-reset", expectUpper(upper))
		if err := w.goAhead(); err != nil {
			return err
		}
		if err := w.wait(ctx, "DONE"); err != nil {
			return err
		}
		if err := r.goAhead(); err != nil {
			return err
		}
		return r.wait(ctx, "DONE")
	}
	check("script", steps())
	for _, role := range []string{"writer", "reader"} {
		g := guests[role]
		var err error
		select {
		case err = <-exited[role]:
		case <-ctx.Done():
			err = ctx.Err()
		}
		g.stdin.Close()
		g.con.Flush()
		check("qemu-exit-"+role, err)
		g.mu.Lock()
		t.passed += g.passed
		t.failed += g.failed
		if !g.finished {
			t.check("tenants/guest-finished-"+role, fmt.Errorf("the %s guest printed no summary (see %s-console.log with -keep)", role, role))
		}
		g.mu.Unlock()
	}
	// The guests are gone: so are their connections (fids, tenant handles).
	released := func() error {
		for _, name := range []string{"writer", "reader"} {
			if n, err := tenantConnections(tenantCmd, name); err != nil || n != 0 {
				return fmt.Errorf("tenant %s: %d connections (%v), want 0", name, n, err)
			}
		}
		return nil
	}
	if waitFor(ctx, 45*time.Second, func() bool { return released() == nil }) != nil {
		check("connections-released-after-guests-exit", released())
	} else {
		check("connections-released-after-guests-exit", nil)
	}
	select {
	case <-srvExited:
		check("one-server-throughout", errors.New("the tenant server exited during the run"))
	default:
		check("one-server-throughout", nil)
	}
	check("reader-upper-has-only-its-files", expectUpper(filepath.Join(tenants, "reader", "upper"), "reader.txt", "reader2.txt"))
	var baseErr error
	for rel, content := range tenantBase {
		if b, err := os.ReadFile(filepath.Join(base, rel)); err != nil || string(b) != content {
			baseErr = fmt.Errorf("base %s: %q %v, want %q", rel, b, err, content)
		}
	}
	check("base-unchanged", baseErr)
	fmt.Printf("vmtest: two guests on one server ran %v\n", time.Since(start).Round(time.Millisecond))
}

// tenantConnections returns the connections `tenant list --json` shows
// for name.
func tenantConnections(tenantCmd func(...string) (string, error), name string) (int, error) {
	out, err := tenantCmd("list", "--json")
	if err != nil {
		return 0, err
	}
	var list []struct {
		Name        string `json:"name"`
		Connections int    `json:"connections"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return 0, fmt.Errorf("tenant list --json: %v: %s", err, out)
	}
	for _, in := range list {
		if in.Name == name {
			return in.Connections, nil
		}
	}
	return 0, fmt.Errorf("tenant %s not listed: %s", name, out)
}

// wantConnections checks that name has its guest's connection.
func wantConnections(tenantCmd func(...string) (string, error), name string) error {
	n, err := tenantConnections(tenantCmd, name)
	if err == nil && n < 1 {
		err = fmt.Errorf("tenant %s has %d connections, want its guest's", name, n)
	}
	return err
}

// expectUpper checks that the top level and dir/ of upper hold exactly
// the names given (work files of the 9p client aside).
func expectUpper(upper string, names ...string) error {
	var got []string
	err := filepath.WalkDir(upper, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == upper {
			return err
		}
		rel, _ := filepath.Rel(upper, p)
		if d.IsDir() && rel == "dir" {
			return nil // a copied-up parent
		}
		got = append(got, rel)
		if d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return err
	}
	if strings.Join(got, " ") != strings.Join(sortedCopy(names), " ") {
		return fmt.Errorf("upper %s holds %v, want %v", upper, got, sortedCopy(names))
	}
	return nil
}

func sortedCopy(s []string) []string {
	c := append([]string{}, s...)
	sort.Strings(c)
	return c
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not ready after %v", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// prefixWriter shows a guest's whole console (-v), each chunk prefixed.
type prefixWriter struct{ role string }

func (p prefixWriter) Write(b []byte) (int, error) {
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		fmt.Printf("[%s console] %s\n", p.role, sc.Text())
	}
	return len(b), nil
}
