package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/union9p/union9p/test/p9wire"
)

// fakeQemuArg makes the test binary a stand-in for QEMU (see TestMain):
// `union9p qemu ... -- TESTBINARY fake-qemu` runs fakeQemu with the
// arguments union9p qemu added.
const fakeQemuArg = "fake-qemu"

// TestQemuRestartsServer: when a union's server dies while the guest
// runs, union9p qemu starts a new one on the same pass socket; the
// guest's old connection has ended, and a new connection (a remount)
// reads the union again. The stand-in QEMU does what QEMU's user network
// does for each guest connection (run the courier from -netdev's
// guestfwd) and kills the server in between, as a crash would.
func TestQemuRestartsServer(t *testing.T) {
	lower, upper, work := layers(t)
	cmd := union9p("qemu", "--transport", "tcp", "--lower", lower, "--upper", upper, "--workdir", work, "--", os.Args[0], fakeQemuArg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("union9p qemu with the stand-in QEMU: %v\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("timed out\n%s", out.String())
	}
	if !strings.Contains(out.String(), "restarting it") {
		t.Errorf("no word of the restart:\n%s", out.String())
	}
}

// fakeQemu is the stand-in QEMU of TestQemuRestartsServer. It returns
// its exit status; what went wrong goes to stderr.
func fakeQemu(args []string) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "fake qemu: "+format+"\n", a...)
		return 1
	}
	m := regexp.MustCompile(`'qemu-courier' '([^']+)'`).FindStringSubmatch(strings.Join(args, " "))
	if m == nil {
		return fail("no courier in %q", args)
	}
	pass := strings.ReplaceAll(m[1], ",,", ",")
	read := func() (*p9wire.Client, error) {
		conn, err := courierConn(pass)
		if err != nil {
			return nil, err
		}
		c, err := p9wire.NewClient(conn, 65536)
		if err != nil {
			conn.Close()
			return nil, err
		}
		if _, err := c.Attach(0, "", "", 0); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	old, err := read()
	if err != nil {
		return fail("first connection: %v", err)
	}
	pid, err := pidWithArg("passfd:" + pass)
	if err != nil {
		return fail("%v", err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	time.Sleep(200 * time.Millisecond)
	if _, err := old.Walk(0, 1, "greeting"); err == nil {
		return fail("the old connection still answers after its server died")
	}
	old.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := read()
		if err == nil {
			_, err = c.Walk(0, 1, "greeting")
			c.Close()
			if err == nil {
				return 0
			}
		}
		if time.Now().After(deadline) {
			return fail("no new server after 20 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// courierConn runs the courier as QEMU's user network does: with one end
// of a loopback TCP connection on its stdio; it returns the other end.
func courierConn(pass string) (net.Conn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	guest, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, err
	}
	server, err := ln.Accept()
	if err != nil {
		guest.Close()
		return nil, err
	}
	f, err := server.(*net.TCPConn).File()
	server.Close()
	if err != nil {
		guest.Close()
		return nil, err
	}
	defer f.Close()
	courier := exec.Command(os.Args[0], "qemu-courier", pass)
	courier.Env = []string{"UNION9P_TEST_RUN_MAIN=1"}
	courier.Stdin, courier.Stdout, courier.Stderr = f, f, f
	if err := courier.Run(); err != nil {
		guest.Close()
		return nil, fmt.Errorf("courier: %w", err)
	}
	return guest, nil
}

// pidWithArg finds the one process with arg as a whole argument.
func pidWithArg(arg string) (int, error) {
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		for _, a := range bytes.Split(b, []byte{0}) {
			if string(a) == arg {
				return strconv.Atoi(filepath.Base(filepath.Dir(d)))
			}
		}
	}
	return 0, fmt.Errorf("no process with argument %q", arg)
}
