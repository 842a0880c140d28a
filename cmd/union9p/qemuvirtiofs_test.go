package main

import "testing"

func TestParseVirtiofsTransport(t *testing.T) {
	tr, unions, _, err := parseQemuArgs([]string{"--transport", "virtiofs", "--name", "a", "--lower", "/a", "--next", "--name", "b", "--lower", "/b", "--", "qemu"})
	if err != nil || tr != (transports{virtiofs: true}) || !unions[0].virtiofs || !unions[1].virtiofs {
		t.Fatalf("--transport virtiofs: %+v %+v %v", tr, unions, err)
	}
	_, unions, _, err = parseQemuArgs([]string{"--transport", "net", "--name", "a", "--virtiofs", "--lower", "/a", "--next", "--name", "b", "--lower", "/b", "--", "qemu"})
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

// TestVirtiofsIsTheDefault: by default (auto) unions with serve flags
// go on virtiofs and a tenant's union goes on the network (net); an
// explicit --transport or a per-union --virtfs still wins, and auto with
// serial keeps meaning net with serial.
func TestVirtiofsIsTheDefault(t *testing.T) {
	tr, unions, _, err := parseQemuArgs([]string{"--name", "a", "--lower", "/a", "--next", "--name", "b", "--tenant", "alice", "--next", "--name", "c", "--virtfs", "--lower", "/c", "--", "qemu"})
	if err != nil || !tr.auto || !tr.net || !unions[0].virtiofs || unions[1].virtiofs || unions[2].virtiofs || !unions[2].virtfs {
		t.Fatalf("%+v %+v %v", tr, unions, err)
	}
	tr, unions, _, err = parseQemuArgs([]string{"--name", "a", "--lower", "/a", "--", "qemu"})
	if err != nil || tr.net || !unions[0].virtiofs {
		t.Fatalf("no tenant, nothing on the network: %+v %+v %v", tr, unions, err)
	}
	tr, unions, _, err = parseQemuArgs([]string{"--transport", "tcp", "--lower", "/a", "--", "qemu"})
	if err != nil || tr != (transports{tcp: true}) || unions[0].virtiofs {
		t.Fatalf("explicit tcp: %+v %+v %v", tr, unions, err)
	}
	for _, v := range []string{"auto,serial", "net,serial"} {
		tr, unions, _, err = parseQemuArgs([]string{"--transport", v, "--lower", "/a", "--", "qemu"})
		if err != nil || tr != (transports{net: true, serial: true}) || unions[0].virtiofs {
			t.Fatalf("%s: %+v %+v %v", v, tr, unions, err)
		}
	}
	if _, _, _, err := parseQemuArgs([]string{"--transport", "net,tcp", "--lower", "/a", "--", "qemu"}); err == nil {
		t.Fatal("net,tcp accepted")
	}
}
