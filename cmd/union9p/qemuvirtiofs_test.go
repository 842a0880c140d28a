package main

import "testing"

func TestParseVirtiofsTransport(t *testing.T) {
	tr, unions, _, err := parseQemuArgs([]string{"--transport", "virtiofs", "--name", "a", "--lower", "/a", "--next", "--name", "b", "--lower", "/b", "--", "qemu"})
	if err != nil || tr != (transports{virtiofs: true}) || !unions[0].virtiofs || !unions[1].virtiofs {
		t.Fatalf("--transport virtiofs: %+v %+v %v", tr, unions, err)
	}
	_, unions, _, err = parseQemuArgs([]string{"--name", "a", "--virtiofs", "--lower", "/a", "--next", "--name", "b", "--lower", "/b", "--", "qemu"})
	if err != nil || !unions[0].virtiofs || unions[1].virtiofs || len(unions[0].serve) != 2 {
		t.Fatalf("--virtiofs on one union: %+v %v", unions, err)
	}
	for _, bad := range [][]string{
		{"--transport", "virtiofs,serial", "--lower", "/a", "--", "qemu"},
		{"--transport", "virtiofs,virtfs", "--lower", "/a", "--", "qemu"},
		{"--virtiofs", "--virtfs", "--lower", "/a", "--", "qemu"},
		{"--transport", "virtiofs", "--tenant", "alice", "--", "qemu"},
	} {
		if _, _, _, err := parseQemuArgs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
