package vhostuser

import (
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The keeper's tests play QEMU against a Keeper whose workers are this
// test binary run again (TestMain) serving a Device with blockingEcho on
// descriptor 3: real processes, killed with SIGKILL.

func TestMain(m *testing.M) {
	if os.Getenv("VHOSTUSER_TEST_WORKER") != "" {
		runTestWorker()
		return
	}
	os.Exit(m.Run())
}

// blockingEcho answers like echo, except that a request starting with
// "B" writes "taken" into its reply buffer (so the test sees it was
// popped) and never returns; Lost writes "lost".
type blockingEcho struct{ echo }

func (b *blockingEcho) Handle(queue int, in, out [][]byte) int {
	if len(in) > 0 && len(in[0]) > 0 && in[0][0] == 'B' {
		copy(out[0], "taken")
		select {}
	}
	return b.echo.Handle(queue, in, out)
}

func (b *blockingEcho) Lost(queue int, in, out [][]byte) int {
	if len(out) == 0 {
		return 0
	}
	return copy(out[0], "lost")
}

func runTestWorker() {
	n, _ := strconv.Atoi(os.Getenv("VHOSTUSER_TEST_WORKER"))
	logger := log.New(io.Discard, "", 0)
	if os.Getenv("VHOSTUSER_TEST_LOG") != "" {
		logger = log.New(os.Stderr, "worker: ", 0)
	}
	d := New(Config{Queues: n, Logger: logger}, &blockingEcho{})
	if err := d.Serve(3); err != nil {
		logger.Print(err)
		os.Exit(1)
	}
}

// keeperFront is a front end on a keeper; workers gets each started
// worker.
type keeperFront struct {
	*front
	workers chan *exec.Cmd
	keeper  *Keeper
}

func newKeeperFront(t *testing.T, queues int, backoff time.Duration) *keeperFront {
	t.Helper()
	k, workers := newTestKeeper(t, queues, backoff)
	return &keeperFront{front: newFrontServe(t, queues, k.Serve), workers: workers, keeper: k}
}

// newTestKeeper returns a keeper whose workers are this test binary,
// with one started; workers gets each worker started.
func newTestKeeper(t *testing.T, queues int, backoff time.Duration) (*Keeper, chan *exec.Cmd) {
	t.Helper()
	workers := make(chan *exec.Cmd, 64)
	logger := log.New(io.Discard, "", 0)
	if os.Getenv("VHOSTUSER_TEST_LOG") != "" {
		logger = log.New(os.Stderr, "keeper: ", 0)
	}
	k := NewKeeper(KeeperConfig{
		Queues:  queues,
		Backoff: backoff,
		Logger:  logger,
		Start: func(sock *os.File) (*Worker, error) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "VHOSTUSER_TEST_WORKER="+strconv.Itoa(queues))
			cmd.ExtraFiles = []*os.File{sock}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				return nil, err
			}
			exited := make(chan struct{})
			go func() { _ = cmd.Wait(); close(exited) }()
			workers <- cmd
			return &Worker{Kill: func() { _ = cmd.Process.Kill() }, Exited: exited}, nil
		},
	})
	if err := k.Prestart(); err != nil {
		t.Fatal(err)
	}
	return k, workers
}

// worker returns the worker started last, waiting for one to start.
func (f *keeperFront) worker() *exec.Cmd {
	f.t.Helper()
	var w *exec.Cmd
	select {
	case w = <-f.workers:
	case <-time.After(10 * time.Second):
		f.t.Fatal("no worker started")
	}
	for {
		select {
		case w = <-f.workers:
		default:
			return w
		}
	}
}

// usedAt returns queue q's used element i (without waiting).
func (f *front) usedAt(q int, i uint16) (id, n uint32) {
	e := f.ram[qbase(q)+usedOff+4+8*uint64(i%testQSize):]
	return binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:])
}

// waitTaken waits until the worker has popped the blocking request
// whose reply buffer is at out.
func (f *front) waitTaken(out uint64) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for string(f.ram[out:out+5]) != "taken" {
		if time.Now().After(deadline) {
			f.t.Fatal("the blocking request was not taken")
		}
		time.Sleep(time.Millisecond)
	}
}

// stillConnected checks that the keeper has not ended QEMU's connection.
func (f *front) stillConnected() {
	f.t.Helper()
	select {
	case err := <-f.served:
		f.served <- err
		f.t.Fatalf("the keeper ended QEMU's connection: %v", err)
	default:
	}
}

// TestKeeperWorkerKilled: a worker killed with SIGKILL while two
// requests are in flight is replaced; the new worker answers those two
// as lost, serves a request published while no worker ran and later
// ones, on both queues, and QEMU's connection is untouched. Repeated
// several times, and the vring base QEMU reads at the end counts every
// request.
func TestKeeperWorkerKilled(t *testing.T) {
	f := newKeeperFront(t, 2, 10*time.Millisecond)
	out := f.simple(1, 0, "hello", 16)
	f.publish(1, 0)
	if id, n := f.used(1, 1); id != 0 || n != 5 || string(f.ram[out:out+5]) != "olleh" {
		t.Fatalf("first request: used (%d, %d) %q", id, n, f.ram[out:out+5])
	}
	used := uint16(1)
	for round := 0; round < 4; round++ {
		w := f.worker()
		b1 := f.simple(1, 2, "B1", 16)
		b2 := f.simple(1, 4, "B2", 16)
		f.publish(1, 2)
		f.publish(1, 4)
		f.waitTaken(b1)
		f.waitTaken(b2)
		if err := w.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		// Published while the worker is dead or being replaced.
		f.simple(1, 6, fmt.Sprint("during", round), 16)
		f.publish(1, 6)
		used += 3
		f.used(1, used)
		got := map[uint32]string{}
		for i := used - 3; i < used; i++ {
			id, n := f.usedAt(1, i)
			got[id] = fmt.Sprintf("%d %s", n, f.ram[f.replyOff(1, int(id)):f.replyOff(1, int(id))+uint64(n)])
		}
		want := map[uint32]string{2: "4 lost", 4: "4 lost", 6: fmt.Sprintf("7 %d%s", round, "gnirud")}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("round %d: used %v, want %v", round, got, want)
		}
		// Both queues are served by the new worker.
		for q := 0; q < 2; q++ {
			out := f.simple(q, 0, "ab", 2)
			f.publish(q, 0)
			if q == 1 {
				used++
			}
			idx := used
			if q == 0 {
				idx = uint16(round + 1)
			}
			if _, n := f.used(q, idx); n != 2 || string(f.ram[out:out+2]) != "ba" {
				t.Fatalf("round %d queue %d: %d bytes %q", round, q, n, f.ram[out:out+2])
			}
		}
		f.stillConnected()
	}
	last := f.worker()
	f.send(msgGetVringBase, state(1, 0))
	p := f.readReply(msgGetVringBase)
	if n := binary.LittleEndian.Uint32(p[4:]); n != uint32(f.next[1]) {
		t.Fatalf("vring base %d, want %d", n, f.next[1])
	}
	// QEMU starts the queue again (a new kick), through the same worker.
	k, _ := unix.Eventfd(0, unix.EFD_CLOEXEC)
	f.kick[1] = k
	f.sendFd(msgSetVringKick, u64(1), k)
	f.ack()
	out = f.simple(1, 0, "zq", 2)
	f.publish(1, 0)
	if _, n := f.used(1, used+1); n != 2 || string(f.ram[out:out+2]) != "qz" {
		t.Fatalf("after the queue was stopped and started: %d bytes %q", n, f.ram[out:out+2])
	}
	select {
	case <-f.workers:
		t.Fatal("a worker was restarted: the keeper and its worker fell out of step")
	default:
	}
	if err := unix.Kill(last.Process.Pid, 0); err != nil {
		t.Fatalf("the worker ended: %v", err)
	}
	f.stillConnected()
}

// replyOff is where simple put the reply buffer of the request at
// descriptor i of queue q.
func (f *front) replyOff(q, i int) uint64 { return dataOff + qbase(q) + uint64(i)*0x1000 + 0x800 }

// TestKeeperNoWorker: while no worker runs (a long backoff), QEMU's
// messages are still answered: the vring base QEMU reads counts the
// request the dead worker took.
func TestKeeperNoWorker(t *testing.T) {
	f := newKeeperFront(t, 1, time.Minute)
	w := f.worker()
	b := f.simple(0, 2, "B", 16)
	f.publish(0, 2)
	f.waitTaken(b)
	w.Process.Kill()
	f.send(msgGetVringBase, state(0, 0))
	p := f.readReply(msgGetVringBase)
	if n := binary.LittleEndian.Uint32(p[4:]); n != 1 {
		t.Fatalf("vring base %d with no worker, want 1", n)
	}
	f.ack()
	f.stillConnected()
}

// TestKeeperBadMessages: a message the keeper or its worker refuses
// ends that QEMU connection and stops its worker; the keeper serves the
// next connection.
func TestKeeperBadMessages(t *testing.T) {
	cases := badMessages()
	cases["private message"] = func(f *front) { f.send(msgKeeperInflight, nil) }
	cases["ring outside memory (the worker refuses)"] = func(f *front) {
		addr := make([]byte, 40)
		binary.LittleEndian.PutUint64(addr[8:], 0x10)
		binary.LittleEndian.PutUint64(addr[16:], 0x10)
		binary.LittleEndian.PutUint64(addr[24:], 0x10)
		f.send(msgSetVringAddr, addr)
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			f := newKeeperFront(t, 1, 10*time.Millisecond)
			w := f.worker()
			bad(f.front)
			select {
			case err := <-f.served:
				if err == nil || !strings.Contains(err.Error(), "vhost-user") {
					t.Fatalf("Serve returned %v", err)
				}
				f.served <- err // for the cleanup
			case <-time.After(5 * time.Second):
				t.Fatal("Serve did not end")
			}
			if w.ProcessState == nil {
				t.Error("the worker still runs after its connection ended")
			}
		})
	}
}

// TestKeeperNextConnection: after a connection ended by a bad message,
// the same keeper serves a new QEMU connection with a new worker.
func TestKeeperNextConnection(t *testing.T) {
	k, workers := newTestKeeper(t, 1, 10*time.Millisecond)
	bad := newFrontServe(t, 1, k.Serve)
	bad.send(999, nil)
	select {
	case err := <-bad.served:
		if err == nil {
			t.Fatal("Serve returned no error")
		}
		bad.served <- err
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not end")
	}
	<-workers
	f := newFrontServe(t, 1, k.Serve)
	out := f.simple(0, 0, "next", 16)
	f.publish(0, 0)
	if _, n := f.used(0, 1); n != 4 || string(f.ram[out:out+4]) != "txen" {
		t.Fatalf("second connection: %d bytes %q", n, f.ram[out:out+4])
	}
	select {
	case <-workers:
	default:
		t.Fatal("the second connection has no worker of its own")
	}
}

// TestKeeperClose: Close stops the connection's worker and no other is
// started; QEMU's connection stays open (it ends with the keeper's
// process).
func TestKeeperClose(t *testing.T) {
	f := newKeeperFront(t, 1, 10*time.Millisecond)
	w := f.worker()
	f.keeper.Close()
	if err := unix.Kill(w.Process.Pid, 0); err != unix.ESRCH {
		t.Fatalf("the worker after Close: kill 0: %v", err)
	}
	select {
	case w := <-f.workers:
		t.Fatalf("worker %d started after Close", w.Process.Pid)
	case <-time.After(200 * time.Millisecond):
	}
	f.stillConnected()
}

// TestKeeperRandomMessages: connections of random messages (known and
// unknown requests, random payloads, sometimes a descriptor) never
// crash the keeper (this process), each ends when the front end closes
// it, and no worker outlives its connection.
func TestKeeperRandomMessages(t *testing.T) {
	k, workers := newTestKeeper(t, 2, 10*time.Millisecond)
	rng := rand.New(rand.NewSource(2))
	var started []*exec.Cmd
	for conn := 0; conn < 25; conn++ {
		sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- k.Serve(sp[1]) }()
		for i := 0; i < 20; i++ {
			req := uint32(rng.Intn(36))
			p := make([]byte, rng.Intn(48))
			rng.Read(p)
			if len(p) >= 4 && rng.Intn(2) == 0 {
				binary.LittleEndian.PutUint32(p, uint32(rng.Intn(3))) // a queue index that may exist
			}
			var oob []byte
			if rng.Intn(4) == 0 {
				efd, _ := unix.Eventfd(0, unix.EFD_CLOEXEC)
				oob = unix.UnixRights(efd)
				defer unix.Close(efd)
			}
			b := make([]byte, headerSize+len(p))
			binary.LittleEndian.PutUint32(b, req)
			binary.LittleEndian.PutUint32(b[4:], flagVersion|uint32(rng.Intn(2))*flagNeedReply)
			binary.LittleEndian.PutUint32(b[8:], uint32(len(p)))
			copy(b[headerSize:], p)
			if err := unix.Sendmsg(sp[0], b, oob, nil, unix.MSG_DONTWAIT); err != nil {
				break // the keeper ended the connection
			}
		}
		unix.Close(sp[0])
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Fatalf("connection %d: Serve did not end", conn)
		}
		unix.Close(sp[1])
	drain:
		for {
			select {
			case w := <-workers:
				started = append(started, w)
			default:
				break drain
			}
		}
	}
	for _, w := range started {
		if err := unix.Kill(w.Process.Pid, 0); err != unix.ESRCH {
			t.Errorf("worker %d still runs after its connection ended", w.Process.Pid)
		}
	}
	if len(started) < 25 {
		t.Errorf("%d workers for 25 connections", len(started))
	}
}

// TestKeeperRefusedReplay: a setup QEMU sent while no worker ran, which
// the next worker refuses, ends QEMU's connection (instead of workers
// being restarted on it forever).
func TestKeeperRefusedReplay(t *testing.T) {
	f := newKeeperFront(t, 1, 300*time.Millisecond)
	w := f.worker()
	w.Process.Kill()
	f.ack() // the keeper finds the worker gone
	addr := make([]byte, 40)
	binary.LittleEndian.PutUint64(addr[8:], 0x10)
	binary.LittleEndian.PutUint64(addr[16:], 0x10)
	binary.LittleEndian.PutUint64(addr[24:], 0x10)
	f.send(msgSetVringAddr, addr)
	f.ack() // kept, not refused: no worker to map it
	select {
	case err := <-f.served:
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("Serve returned %v", err)
		}
		f.served <- err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not end")
	}
}
