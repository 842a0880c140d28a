package qemu

import (
	"fmt"
	"io"
)

// cpioWriter writes the "newc" (SVR4, no CRC) archive format that the
// kernel unpacks as an initramfs.
type cpioWriter struct {
	w   io.Writer
	ino uint32
	err error
}

// cpioHeader is one entry's metadata.
type cpioHeader struct {
	Name  string // without a leading slash
	Mode  uint32 // S_IFMT | permission bits
	UID   uint32
	GID   uint32
	Mtime uint32
	Size  uint32
	Rdev  uint32 // major<<8 | minor, for device nodes
}

var cpioPad [4]byte

// write writes one entry: the 110-byte header, the NUL-terminated name and
// the data, each padded to a multiple of four bytes.
func (c *cpioWriter) write(h cpioHeader, data []byte) error {
	if c.err != nil {
		return c.err
	}
	c.ino++
	nlink := uint32(1)
	if h.Mode&0o170000 == 0o040000 {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, h.Mode, h.UID, h.GID, nlink, h.Mtime, len(data),
		0, 0, h.Rdev>>8, h.Rdev&0xff, len(h.Name)+1, 0)
	c.put([]byte(hdr))
	c.put([]byte(h.Name + "\x00"))
	c.put(cpioPad[:(4-(len(hdr)+len(h.Name)+1)%4)%4])
	c.put(data)
	c.put(cpioPad[:(4-len(data)%4)%4])
	return c.err
}

func (c *cpioWriter) put(b []byte) {
	if c.err == nil && len(b) > 0 {
		_, c.err = c.w.Write(b)
	}
}

// close writes the trailer entry.
func (c *cpioWriter) close() error {
	return c.write(cpioHeader{Name: "TRAILER!!!"}, nil)
}
