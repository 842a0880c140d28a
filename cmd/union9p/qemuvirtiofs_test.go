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

// TestVirtiofsAsDefault: with the default switched to virtiofs (the
// one-line change of defaultTransport), unions with serve flags go on
// virtiofs and a tenant's union stays on the network (auto).
func TestVirtiofsAsDefault(t *testing.T) {
	defer func(old string) { defaultTransport = old }(defaultTransport)
	defaultTransport = "virtiofs"
	tr, unions, _, err := parseQemuArgs([]string{"--name", "a", "--lower", "/a", "--next", "--name", "b", "--tenant", "alice", "--", "qemu"})
	if err != nil || !tr.virtiofs || !tr.auto || !unions[0].virtiofs || unions[1].virtiofs {
		t.Fatalf("%+v %+v %v", tr, unions, err)
	}
	// An explicit --transport still wins.
	tr, unions, _, err = parseQemuArgs([]string{"--transport", "tcp", "--lower", "/a", "--", "qemu"})
	if err != nil || tr != (transports{tcp: true}) || unions[0].virtiofs {
		t.Fatalf("explicit tcp: %+v %+v %v", tr, unions, err)
	}
}
