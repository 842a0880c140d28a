package main

import (
	"fmt"
	"testing"
)

func TestParseQemuArgs(t *testing.T) {
	unions, qemuArgs, err := parseQemuArgs([]string{
		"--name", "root", "--lower", "/base", "--upper", "/u", "--workdir", "/w",
		"--next", "-o", "lowerdir=/src",
		"--", "qemu-system-x86_64", "-m", "512",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(unions); got != "[{root [--lower /base --upper /u --workdir /w]} {1 [-o lowerdir=/src]}]" {
		t.Errorf("unions %s", got)
	}
	if fmt.Sprint(qemuArgs) != "[qemu-system-x86_64 -m 512]" {
		t.Errorf("qemu args %v", qemuArgs)
	}

	for name, args := range map[string][]string{
		"no qemu command":   {"--lower", "/a", "--"},
		"no separator":      {"--lower", "/a", "qemu-system-x86_64"},
		"empty union":       {"--lower", "/a", "--next", "--", "qemu"},
		"listen is ours":    {"--lower", "/a", "--listen", "unix:/x", "--", "qemu"},
		"repeated name":     {"--name", "a", "--lower", "/a", "--next", "--name", "a", "--lower", "/b", "--", "qemu"},
		"comma in the name": {"--name", "a,b", "--lower", "/a", "--", "qemu"},
	} {
		if _, _, err := parseQemuArgs(args); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
