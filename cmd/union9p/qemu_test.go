package main

import (
	"fmt"
	"testing"
)

func TestParseQemuArgs(t *testing.T) {
	tr, unions, qemuArgs, err := parseQemuArgs([]string{
		"--name", "root", "--lower", "/base", "--upper", "/u", "--workdir", "/w",
		"--next", "-o", "lowerdir=/src",
		"--", "qemu-system-x86_64", "-m", "512",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(unions); got != "[{root [--lower /base --upper /u --workdir /w]  false true} {1 [-o lowerdir=/src]  false true}]" {
		t.Errorf("unions %s", got)
	}
	if fmt.Sprint(qemuArgs) != "[qemu-system-x86_64 -m 512]" {
		t.Errorf("qemu args %v", qemuArgs)
	}
	if tr != (transports{auto: true}) {
		t.Errorf("default transports %+v, want auto", tr)
	}
	tr, unions, _, err = parseQemuArgs([]string{"--transport", "tcp,serial", "--lower", "/a", "--", "qemu"})
	if err != nil || tr != (transports{tcp: true, serial: true}) || len(unions) != 1 {
		t.Errorf("--transport tcp,serial: %+v %v %v", tr, unions, err)
	}
	if tr, _, _, err = parseQemuArgs([]string{"--transport=serial", "--lower", "/a", "--", "qemu"}); err != nil || tr != (transports{serial: true}) {
		t.Errorf("--transport=serial: %+v %v", tr, err)
	}

	for name, args := range map[string][]string{
		"no qemu command":          {"--lower", "/a", "--"},
		"no separator":             {"--lower", "/a", "qemu-system-x86_64"},
		"empty union":              {"--lower", "/a", "--next", "--", "qemu"},
		"listen is ours":           {"--lower", "/a", "--listen", "unix:/x", "--", "qemu"},
		"repeated name":            {"--name", "a", "--lower", "/a", "--next", "--name", "a", "--lower", "/b", "--", "qemu"},
		"comma in the name":        {"--name", "a,b", "--lower", "/a", "--", "qemu"},
		"quote in the name":        {"--name", "a'b", "--lower", "/a", "--", "qemu"},
		"name too long for fw_cfg": {"--name", "a123456789012345678901234567890123456789012345", "--lower", "/a", "--", "qemu"},
		"unknown transport":        {"--transport", "udp", "--lower", "/a", "--", "qemu"},
		"transport after a union":  {"--lower", "/a", "--transport", "tcp", "--", "qemu"},
	} {
		if _, _, _, err := parseQemuArgs(args); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
