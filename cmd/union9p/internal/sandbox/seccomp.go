package sandbox

import (
	seccomp "github.com/elastic/go-seccomp-bpf"
)

// loadSeccomp installs the allow-list of syscalls.go (plus extra, for a
// confined test harness) on every thread (TSYNC, which also sets
// no_new_privs on each). Anything else gets EPERM and is logged by the
// kernel (FLAG_LOG); with logOnly it is allowed and logged.
func loadSeccomp(logOnly bool, extra []string) error {
	deny := seccomp.ActionErrno // EPERM; see the package comment for why not kill
	if logOnly {
		deny = seccomp.ActionLog
	}
	groups := []seccomp.SyscallGroup{
		{Action: seccomp.ActionAllow, Names: allowedSyscalls},
		{Action: seccomp.ActionAllow, NamesWithCondtions: allowedWithArgs},
	}
	if len(extra) > 0 {
		groups = append(groups, seccomp.SyscallGroup{Action: seccomp.ActionAllow, Names: extra})
	}
	return seccomp.LoadFilter(seccomp.Filter{
		NoNewPrivs: true,
		Flag:       seccomp.FilterFlagTSync | seccomp.FilterFlagLog,
		Policy:     seccomp.Policy{DefaultAction: deny, Syscalls: groups},
	})
}
