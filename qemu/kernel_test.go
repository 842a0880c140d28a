package qemu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseKernelDepends(t *testing.T) {
	for _, tc := range []struct {
		name, out, want string
		fails           bool
	}{
		{name: "bookworm", out: "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n", want: "linux-image-6.1.0-56-amd64"},
		{name: "cloud flavour is not taken", out: "linux-image-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n", fails: true},
		{name: "other deps ignored", out: "x\n  Depends: initramfs-tools\n  Depends: linux-image-6.12.9-amd64\n", want: "linux-image-6.12.9-amd64"},
		{name: "empty", out: "", fails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseKernelDepends([]byte(tc.out))
			if (err != nil) != tc.fails || got != tc.want {
				t.Errorf("got %q, %v; want %q (fails %v)", got, err, tc.want, tc.fails)
			}
		})
	}
}

func TestModuleName(t *testing.T) {
	for file, want := range map[string]string{
		"9pnet_fd.ko":            "9pnet_fd",
		"virtio-pci.ko.xz":       "virtio_pci",
		"overlay.ko.zst":         "overlay",
		"vmw_vsock_virtio.ko.gz": "vmw_vsock_virtio",
	} {
		if got, ok := moduleName(file); !ok || got != want {
			t.Errorf("moduleName(%q) = %q, %v; want %q", file, got, ok, want)
		}
	}
	if _, ok := moduleName("modules.dep"); ok {
		t.Error("modules.dep taken for a module")
	}
}

// TestModulesOfCachedKernel resolves the 9p modules of every kernel that
// the VM suite (or a bench with UNION9P_KERNEL_PACKAGE) unpacked, when
// there is one: dependencies come first.
func TestModulesOfCachedKernel(t *testing.T) {
	dir, err := Cache()
	if err != nil {
		t.Skip(err)
	}
	m, _ := filepath.Glob(filepath.Join(dir, "linux-image-*-amd64", ".unpacked"))
	if len(m) == 0 {
		t.Skipf("no unpacked kernel in %s (go run ./test/vm fetches one)", dir)
	}
	for _, u := range m {
		k := kernelAt(dir, filepath.Base(filepath.Dir(u)))
		t.Run(k.Package, func(t *testing.T) { checkNinePModules(t, k) })
	}
}

func checkNinePModules(t *testing.T, k *Kernel) {
	mods, err := k.Modules(NinePModules...)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range mods {
		pos[m.Name] = i
	}
	// A kernel may build some of them in (Debian's 6.12 has virtio
	// built in): those are not loaded, and must be listed as built in.
	builtin, _ := os.ReadFile(filepath.Join(k.ModuleDir, "modules.builtin"))
	isBuiltin := func(name string) bool {
		for _, l := range strings.Split(string(builtin), "\n") {
			if n, ok := moduleName(filepath.Base(l)); ok && n == name {
				return true
			}
		}
		return false
	}
	for _, name := range NinePModules {
		if _, ok := pos[name]; !ok && !isBuiltin(name) {
			t.Errorf("%s of %s neither loaded nor built in: order %v", name, k.Package, pos)
		}
	}
	for _, pair := range [][2]string{{"virtio", "virtio_console"}, {"9pnet", "9pnet_fd"}, {"9pnet", "9p"}, {"netfs", "9p"}, {"virtio_ring", "virtio_pci"}} {
		a, okA := pos[pair[0]]
		b, okB := pos[pair[1]]
		if okA && okB && a > b {
			t.Errorf("%s must load before %s: order %v", pair[0], pair[1], pos)
		}
	}
}
