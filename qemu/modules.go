package qemu

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// NinePModules are the modules a guest needs to mount 9p over a
// virtio-serial port with trans=fd. Their dependencies are added by
// [Kernel.Modules]: fscache, which 9p needs in Linux 6.1, is part of
// netfs since 6.7, so it is left to 9p's own dependency list.
var NinePModules = []string{
	"virtio", "virtio_ring", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
	"virtio_pci", "virtio_console", "netfs", "9pnet", "9pnet_fd", "9p",
}

// VirtfsModules are the modules a guest needs, on top of [NinePModules],
// to mount a share of QEMU's own 9p server (-virtfs, mount -t 9p -o
// trans=virtio): the virtio transport of the 9p client.
var VirtfsModules = []string{"9pnet_virtio"}

// NetModules are the modules a guest needs, on top of [NinePModules], to
// mount over trans=tcp on the user network that [NetArgs] adds: the
// virtio NIC and qemu_fw_cfg, through which guest-mount finds a union's
// address by name (see [LookupNet]). The kernel's tcp transport is in
// 9pnet_fd.
var NetModules = []string{"virtio_net", "qemu_fw_cfg"}

// OverlayModules are the modules for the kernel's own overlayfs, the
// reference that union semantics are compared against.
var OverlayModules = []string{"overlay"}

// VsockModules are the modules for virtio vsock (usable where the host
// has /dev/vhost-vsock).
var VsockModules = []string{"vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport"}

// Module is one kernel module ready to be put into an initramfs.
type Module struct {
	// Name is the module name with '-' folded to '_' (as the kernel does).
	Name string
	// Data is the uncompressed .ko.
	Data []byte
}

// Modules returns the named modules and everything they depend on, in an
// order in which insmod can load them (dependencies first). Compressed
// modules (.ko.xz, .ko.zst, .ko.gz) are decompressed with the matching
// tool.
func (k *Kernel) Modules(names ...string) ([]Module, error) {
	files := map[string]string{}
	err := filepath.WalkDir(filepath.Join(k.ModuleDir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if name, ok := moduleName(d.Name()); ok {
				files[name] = p
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("modules of %s: %w", k.Release, err)
	}
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(k.ModuleDir, "modules.builtin")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if n, ok := moduleName(filepath.Base(l)); ok {
				builtin[n] = true
			}
		}
	}

	var out []Module
	state := map[string]int{} // 1 = visiting, 2 = done
	var visit func(name, from string) error
	visit = func(name, from string) error {
		name = strings.ReplaceAll(name, "-", "_")
		switch state[name] {
		case 1:
			return fmt.Errorf("module %s: dependency cycle", name)
		case 2:
			return nil
		}
		p, ok := files[name]
		if !ok {
			if builtin[name] {
				state[name] = 2
				return nil
			}
			if from != "" {
				return fmt.Errorf("module %s (needed by %s) not in %s", name, from, k.Package)
			}
			return fmt.Errorf("module %s not in %s", name, k.Package)
		}
		state[name] = 1
		data, err := readModule(p)
		if err != nil {
			return err
		}
		deps, err := moduleDepends(data)
		if err != nil {
			return fmt.Errorf("module %s: %w", name, err)
		}
		for _, d := range deps {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		state[name] = 2
		out = append(out, Module{Name: name, Data: data})
		return nil
	}
	for _, n := range names {
		if err := visit(n, ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// moduleName maps a file name such as 9pnet_fd.ko.xz to 9pnet_fd.
func moduleName(file string) (string, bool) {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(file, ext) {
			return strings.ReplaceAll(strings.TrimSuffix(file, ext), "-", "_"), true
		}
	}
	return "", false
}

// readModule returns the uncompressed contents of a module file.
func readModule(path string) ([]byte, error) {
	var tool string
	switch {
	case strings.HasSuffix(path, ".ko"):
		return os.ReadFile(path)
	case strings.HasSuffix(path, ".xz"):
		tool = "xz"
	case strings.HasSuffix(path, ".zst"):
		tool = "zstd"
	case strings.HasSuffix(path, ".gz"):
		tool = "gzip"
	}
	out, err := exec.Command(tool, "-dc", path).Output()
	if err != nil {
		return nil, fmt.Errorf("decompress %s with %s: %w", path, tool, err)
	}
	return out, nil
}

// moduleDepends reads the depends= entry of a module's .modinfo section.
func moduleDepends(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, err
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("no .modinfo section")
	}
	info, err := sec.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(info, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}
