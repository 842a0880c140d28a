// Package exhaust runs union9p out of resources and checks that it says
// so with an errno, keeps serving, and recovers once clients let go:
// file descriptors here (the server under `ulimit -n 64`, a client opening
// 200 files); a full upper filesystem in the VM suite (test/vm/guest,
// exhaust.go), where the guest kernel's 9p client fills it.
package exhaust
