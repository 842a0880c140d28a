package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/union9p/union9p/qemu"
	"github.com/union9p/union9p/test/vm/fixture"
)

// The tenants demo (`go run ./test/vm/demo -tenants`, make demo-tenants):
// ONE `union9p serve --tenants` process serves the same busybox base to
// two guests, alice and bob, each booting from its own tenant through
// `union9p qemu --tenant`. Alice changes things, bob does not see them,
// `union9p tenant reset alice` drops her changes, and alice boots again
// into the pristine base. The guests' /etc/rc.demo says what each sees.

// rcTenants replaces the base's /etc/rc.demo: what a guest does depends
// on union9p.demo= on its kernel command line.
const rcTenants = `#!/bin/sh
run=$(sed -n 's/.*union9p\.demo=\([a-z-]*\).*/\1/p' /proc/cmdline)
echo "demo[$run]: root is $(grep ' / ' /proc/mounts | cut -d' ' -f1-3)"
if [ "$run" = alice-writes ]; then
	echo "written by alice" > /root/alice.txt
	echo "alice's motd" > /etc/motd
	rm /etc/issue
	echo "demo[$run]: wrote /root/alice.txt, changed /etc/motd, removed /etc/issue"
fi
echo "demo[$run]: ls /root: $(ls /root | tr '\n' ' ')"
echo "demo[$run]: /etc/motd: $(cat /etc/motd)"
echo "demo[$run]: /etc/issue: $(cat /etc/issue 2>&1)"
`

func runTenants(keep bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	logf := func(format string, args ...any) { fmt.Printf("demo: "+format+"\n", args...) }
	s, err := setUp(ctx, keep, "union9p-demo-tenants-", logf)
	if s.dir != "" && !keep {
		defer os.RemoveAll(s.dir)
	}
	if err != nil {
		return err
	}
	dir, k, union9p, initrd := s.dir, s.kernel, s.union9p, s.initrd
	base := filepath.Join(dir, "base")
	if err := buildBase(base); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(base, "etc/rc.demo"), []byte(rcTenants), 0o755); err != nil {
		return err
	}
	exact := fixture.ManifestOptions{Times: true, Private: true, DirNlink: true}
	before, err := fixture.Manifest(base, exact)
	if err != nil {
		return err
	}

	// The one server.
	tenants, ctl := filepath.Join(dir, "tenants"), filepath.Join(dir, "control.sock")
	show := func(args ...string) error {
		fmt.Printf("\n$ union9p %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, union9p, args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
		return cmd.Run()
	}
	srvArgs := []string{"serve", "--lower", base, "--tenants", tenants, "--control", ctl,
		"--listen", "unix:" + filepath.Join(dir, "alice.sock") + ",tenant=alice"}
	fmt.Printf("\n$ union9p %s &\n", strings.Join(srvArgs, " "))
	srv := exec.Command(union9p, srvArgs...)
	var srvLog bytes.Buffer
	srv.Stderr = &srvLog
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		_ = srv.Wait()
	}()
	for i := 0; ; i++ {
		if fi, err := os.Stat(ctl + ".attach"); err == nil && fi.Mode()&os.ModeSocket != 0 {
			break
		}
		if i == 300 {
			return fmt.Errorf("the server did not start:\n%s", srvLog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := show("tenant", "add", "--control", ctl, "bob"); err != nil {
		return err
	}

	var console bytes.Buffer
	boot := func(name, run string) error {
		vm := qemu.Machine{Kernel: k.Image, Initrd: initrd, MemoryMB: 256, Append: "union9p.demo=" + run}
		args := append([]string{"qemu", "--control", ctl, "--name", "root", "--tenant", name, "--"}, vm.Args()...)
		fmt.Printf("\n$ union9p qemu --control %s --name root --tenant %s -- qemu-system-x86_64 ...   # %s\n", ctl, name, run)
		cmd := exec.CommandContext(ctx, union9p, args...)
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 15 * time.Second
		cmd.Stdout, cmd.Stderr = io.MultiWriter(os.Stdout, &console), os.Stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("union9p qemu --tenant %s: %w", name, err)
		}
		logf("%s's guest ran %v", name, time.Since(start).Round(time.Millisecond))
		return nil
	}
	if err := boot("alice", "alice-writes"); err != nil {
		return err
	}
	if err := boot("bob", "bob-looks"); err != nil {
		return err
	}
	if err := show("tenant", "list", "--control", ctl); err != nil {
		return err
	}
	// Both guests have exited: their connections must have ended with them
	// (over the tap a vanished guest sends no FIN; union9p qemu ends them).
	if err := noConnectionsLeft(ctx, union9p, ctl); err != nil {
		return err
	}
	logf("alice's upper (%s):", filepath.Join(tenants, "alice", "upper"))
	if err := showTree(filepath.Join(tenants, "alice", "upper")); err != nil {
		return err
	}
	if err := show("tenant", "reset", "--control", ctl, "alice"); err != nil {
		return err
	}
	if err := boot("alice", "alice-again"); err != nil {
		return err
	}

	var problems []string
	out := console.String()
	for _, want := range []string{
		"demo[alice-writes]: /etc/motd: alice's motd",
		"demo[alice-writes]: /etc/issue: cat: can't open '/etc/issue'",
		"demo[bob-looks]: /etc/motd: base motd",
		"demo[bob-looks]: /etc/issue: union9p demo base",
		"demo[alice-again]: /etc/motd: base motd",
		"demo[alice-again]: /etc/issue: union9p demo base",
	} {
		if !strings.Contains(out, want) {
			problems = append(problems, fmt.Sprintf("the console lacks %q", want))
		}
	}
	for _, run := range []string{"bob-looks", "alice-again"} {
		if strings.Contains(out, "demo["+run+"]: ls /root: alice.txt") {
			problems = append(problems, run+" sees /root/alice.txt")
		}
	}
	if ents, err := os.ReadDir(filepath.Join(tenants, "bob", "upper")); err != nil || len(ents) > 0 {
		problems = append(problems, fmt.Sprintf("bob's upper is not empty: %v %v", ents, err))
	}
	after, err := fixture.Manifest(base, exact)
	if err != nil {
		return err
	}
	if diffs := fixture.Diff(before, after, "before", "after"); len(diffs) > 0 {
		problems = append(problems, fmt.Sprintf("%d changes in the base", len(diffs)))
	} else {
		logf("one server served both guests; the base is unchanged (%d objects)", len(after))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// noConnectionsLeft waits up to five seconds for the server at ctl to
// count no connection for any tenant.
func noConnectionsLeft(ctx context.Context, union9p, ctl string) error {
	var last string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, err := exec.CommandContext(ctx, union9p, "tenant", "list", "--json", "--control", ctl).Output()
		if err != nil {
			return fmt.Errorf("tenant list --json: %w", err)
		}
		var infos []struct {
			Name        string `json:"name"`
			Connections int    `json:"connections"`
		}
		if err := json.Unmarshal(out, &infos); err != nil {
			return fmt.Errorf("tenant list --json: %w (%s)", err, out)
		}
		last = ""
		for _, in := range infos {
			if in.Connections != 0 {
				last += fmt.Sprintf(" %s: %d", in.Name, in.Connections)
			}
		}
		if last == "" {
			fmt.Println("demo: no tenant holds a connection after its guest exited")
			return nil
		}
	}
	return fmt.Errorf("connections outlived their guests:%s", last)
}
