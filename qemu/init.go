package qemu

import (
	"fmt"
	"strings"
)

// InitScript returns a busybox sh script for /init that mounts /proc, /sys,
// /dev (devtmpfs) and a tmpfs on /tmp, loads /lib/modules/order (see
// [Initramfs.Modules]), runs the shell snippet run and powers the guest off
// when it returns. Module loading is retried a few times, because a module
// whose dependency's device has not settled may fail once; a module that
// still fails is reported on the console, so a guest never runs with a
// module silently missing.
func InitScript(run string) string {
	var b strings.Builder
	b.WriteString(`#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
pending=$(cat /lib/modules/order)
for try in 1 2 3 4 5; do
	left=
	for m in $pending; do
		grep -q "^$m " /proc/modules || insmod /lib/modules/$m.ko 2>/dev/null || left="$left $m"
	done
	pending=$left
	[ -z "$pending" ] && break
	usleep 200000
done
[ -n "$pending" ] && echo "init: modules failed to load:$pending"
`)
	fmt.Fprintf(&b, "%s\n", run)
	b.WriteString("sync\npoweroff -f\n")
	return b.String()
}
