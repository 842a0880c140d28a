package difftest

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMain clears the umask: the kernel applies it to modes given to
// mkdir, open and mknod on the overlay mount, while union receives modes
// that a client has already masked. With a zero umask both get the mode
// an operation names.
func TestMain(m *testing.M) {
	unix.Umask(0)
	os.Exit(m.Run())
}
