package main

import "testing"

func TestParseQemuArgsVirtfs(t *testing.T) {
	tr, unions, _, err := parseQemuArgs([]string{"--transport", "virtfs", "--name", "a", "--lower", "/a",
		"--next", "--name", "b", "--lower", "/b", "--", "qemu"})
	if err != nil || tr != (transports{virtfs: true}) || len(unions) != 2 || !unions[0].virtfs || !unions[1].virtfs {
		t.Errorf("--transport virtfs: %+v %+v %v, want every union on virtfs", tr, unions, err)
	}
	tr, unions, _, err = parseQemuArgs([]string{"--transport", "tap,serial", "--name", "a", "--lower", "/a",
		"--next", "--name", "b", "--virtfs", "--lower", "/b", "--", "qemu"})
	if err != nil || tr != (transports{tap: true, serial: true}) || len(unions) != 2 || unions[0].virtfs || !unions[1].virtfs {
		t.Errorf("--virtfs on the second union: %+v %+v %v", tr, unions, err)
	}
	if len(unions) == 2 && len(unions[1].serve) != 2 {
		t.Errorf("--virtfs was passed on to serve: %q", unions[1].serve)
	}
	for name, args := range map[string][]string{
		"virtfs with another transport": {"--transport", "virtfs,serial", "--lower", "/a", "--", "qemu"},
		"virtfs and tcp":                {"--transport", "tcp,virtfs", "--lower", "/a", "--", "qemu"},
		"a tenant on virtfs":            {"--transport", "virtfs", "--tenant", "alice", "--", "qemu"},
		"a tenant with --virtfs":        {"--virtfs", "--tenant", "alice", "--", "qemu"},
	} {
		if _, _, _, err := parseQemuArgs(args); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
