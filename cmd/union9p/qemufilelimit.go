package main

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// virtiofsNofileEnv, when set in union9p qemu's environment, is the
// descriptor limit of its virtiofs children instead of the kernel's
// ceiling. The VM suite sets it below the number of objects its guest
// looks up, to check that the server lets go of idle objects' descriptors
// (qemu/virtfs/hold.go) on any host, also one where the limit can be
// raised. It only lowers the limit. Not meant for users.
const virtiofsNofileEnv = "UNION9P_VIRTIOFS_NOFILE"

// childFileLimit sets the descriptor limit of a qemu-virtfs or
// qemu-virtiofs child: the kernel's ceiling (raiseFileLimit), or for
// virtiofs the one virtiofsNofileEnv asks for.
func childFileLimit(transport string) {
	if v := os.Getenv(virtiofsNofileEnv); v != "" && transport == "virtiofs" {
		var cur unix.Rlimit
		n, err := strconv.ParseUint(v, 10, 64)
		if err == nil && n > 0 && unix.Getrlimit(unix.RLIMIT_NOFILE, &cur) == nil && n < cur.Cur {
			_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: cur.Max})
		}
		return
	}
	raiseFileLimit()
}
