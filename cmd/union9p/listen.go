package main

import (
	"net"
	"strings"

	"github.com/union9p/union9p/p9srv"
	"github.com/union9p/union9p/qemu"
)

// passScheme is the --listen scheme of a pass socket: connections are
// not accepted on it but handed over on it, one descriptor per courier
// (see qemu.ListenPassed). `union9p qemu` serves guests' trans=tcp
// connections this way; a user has no reason to name it.
const passScheme = "passfd"

// listen opens the listener for one --listen spec: a pass socket here,
// every other scheme in p9srv.Listen.
func listen(spec string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(spec, passScheme+":"); ok {
		return qemu.ListenPassed(path)
	}
	return p9srv.Listen(spec)
}
