package qemu

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// cachedKernel finds the kernel that FetchKernel unpacked before, without
// downloading (apt-cache names it, from the local package lists).
func cachedKernel(dir string) (*Kernel, error) {
	// The kernel the VM suite boots (FetchKernel's choice), not any other
	// the cache may also hold (a newer one a benchmark was run with).
	pkg := os.Getenv(KernelPackageEnv)
	if pkg == "" {
		var err error
		if pkg, err = currentKernelPackage(context.Background()); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, pkg, ".unpacked")); err != nil {
		return nil, err
	}
	return kernelAt(dir, pkg), nil
}

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

// TestModulesOfCachedKernel resolves the 9p modules of the kernel that the
// VM suite downloaded, when there is one: dependencies come first.
func TestModulesOfCachedKernel(t *testing.T) {
	dir, err := Cache()
	if err != nil {
		t.Skip(err)
	}
	k, err := cachedKernel(dir)
	if err != nil {
		t.Skipf("no unpacked kernel in %s (go run ./test/vm fetches one): %v", dir, err)
	}
	mods, err := k.Modules(NinePModules...)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range mods {
		pos[m.Name] = i
	}
	for _, pair := range [][2]string{{"virtio", "virtio_console"}, {"9pnet", "9pnet_fd"}, {"9pnet", "9p"}, {"netfs", "9p"}, {"virtio_ring", "virtio_pci"}} {
		a, okA := pos[pair[0]]
		b, okB := pos[pair[1]]
		if !okA || !okB || a > b {
			t.Errorf("%s must load before %s: order %v", pair[0], pair[1], pos)
		}
	}
}
