package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/union9p/union9p/test/internal/guestutil"
)

// Checks of the default guest transport itself (TCP on the guest's user
// network, a courier handing each connection to the union's server): a
// guest that sends garbage, hangs up in the middle of a request or
// connects over and over loses only its own connections, while its
// mount of the same union keeps working, and every new mount is served.

// hostAddr is where `union9p qemu` offers the first union ("host").
const hostAddr = "10.0.2.100:564"

// hostileConnections opens raw connections to the union's address and
// misbehaves on them; then the mount at dir must still answer.
func hostileConnections(dir string) error {
	frame := func(size uint32, typ uint8, rest []byte) []byte {
		b := binary.LittleEndian.AppendUint32(nil, size)
		return append(append(b, typ, 0xff, 0xff), rest...)
	}
	tversion := frame(4+1+2+4+2+8, 100, append(binary.LittleEndian.AppendUint32(nil, 8192), 8, 0, '9', 'P', '2', '0', '0', '0'))
	for _, send := range [][]byte{
		[]byte("GET / HTTP/1.0\r\n\r\n"),
		frame(0xffffffff, 100, nil),                              // larger than any msize
		frame(2, 100, nil),                                       // shorter than a header
		frame(100, 100, []byte("9P2000")),                        // half a frame, then gone
		append(tversion, frame(7+4, 250, []byte{1, 2, 3, 4})...), // a good version, then an unknown type
		tversion[:9], // hang up mid-request
	} {
		c, err := net.DialTimeout("tcp", hostAddr, 10*time.Second)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", hostAddr, err)
		}
		c.Write(send)
		c.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, c)
		c.Close()
	}
	for i := range 30 {
		c, err := net.DialTimeout("tcp", hostAddr, 10*time.Second)
		if err != nil {
			return fmt.Errorf("connection %d to %s: %w", i, hostAddr, err)
		}
		c.Close()
	}
	if _, err := os.ReadDir(dir); err != nil {
		return fmt.Errorf("the mount after hostile connections: %w", err)
	}
	return nil
}

// remountRepeatedly mounts the union again and again on a second mount
// point while the first stays mounted: each mount is a new connection and
// must see what the first one wrote.
func remountRepeatedly(spec, first string) error {
	const dir = "/mnt/remount"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	want := fmt.Sprint(time.Now().UnixNano())
	if err := os.WriteFile(filepath.Join(first, "remount-probe"), []byte(want), 0o644); err != nil {
		return err
	}
	defer os.Remove(filepath.Join(first, "remount-probe"))
	for i := range 10 {
		if err := guestutil.Command("/bin/union9p", "guest-mount", spec, dir); err != nil {
			return fmt.Errorf("mount %d: %w", i, err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "remount-probe"))
		if uerr := guestutil.UnmountAndWait(dir, ""); err == nil {
			err = uerr
		}
		if err == nil && string(b) != want {
			err = errors.New("the new mount shows other content")
		}
		if err != nil {
			return fmt.Errorf("mount %d: %w", i, err)
		}
	}
	return nil
}
