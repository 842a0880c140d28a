package virtfs

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// QEMU dies while its requests are in flight: the process that holds the
// mount's only descriptor is killed mid-write and mid-listing. The mount
// goes with it, Serve returns (no handler panics on the ended
// connection), and the union's lower is untouched (mountUnion's cleanup
// checks it).
func TestHolderKilledMidRequest(t *testing.T) {
	m := mountUnion(t, map[string]string{"d/": "", "d/f": "lower"})
	// As QEMU: the mount is descriptor 3, used through /proc/self/fd/3.
	holder := exec.Command("sh", "-c", `while :; do
		dd if=/dev/zero of=/proc/self/fd/3/d/big bs=1M count=64 conv=fsync 2>/dev/null
		cat /proc/self/fd/3/d/f >/dev/null; ls -l /proc/self/fd/3/d >/dev/null
	done`)
	holder.ExtraFiles = []*os.File{m.mnt}
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	m.mnt.Close() // the holder has the only copy now
	m.mnt = nil
	time.Sleep(700 * time.Millisecond)
	select {
	case <-m.served:
		t.Fatal("Serve returned while the holder was alive")
	default:
	}
	unix.Kill(-holder.Process.Pid, unix.SIGKILL)
	holder.Wait()
	select {
	case <-m.served:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return 10 s after the mount's holder was killed")
	}
}
