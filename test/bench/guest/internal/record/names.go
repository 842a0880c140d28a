package record

// Side is one mount the guest measures: a transport and its 9p options.
type Side struct {
	Key  string // in result records, e.g. "tcp"
	What string // for the report
}

// The sides, in the order the report lists them. The union9p sides mount
// one union (or, for relay-splice, a second union over the same lower)
// served by `union9p qemu --transport tcp,serial`; the qemu sides mount a
// plain directory with the same content through QEMU's own virtio-9p.
var Sides = []Side{
	{SideVirtiofs, "union9p qemu --virtiofs: union9p as a vhost-user-fs device (requests and data in guest RAM, a shared memfd), mount -t virtiofs, queue size 1024"},
	{SideVirtfs, "union9p qemu --virtfs: union9p's FUSE frontend on a detached host mount, exported by QEMU's virtio-9p (-virtfs local, passthrough), trans=virtio, cache=mmap, msize=512000"},
	{SideTCP, "union9p, guest-mount's default: TCP over virtio-net (the network named above: tap, or QEMU user net with restrict=on and a guestfwd cmd: courier), socket with TCP_NODELAY handed to the kernel (trans=fd), cache=mmap, msize 1 MiB"},
	{"tcp-kernel", "the same, but the kernel connects (trans=tcp: Nagle on)"},
	{"tcp-512k", "the same with msize=512000"},
	{"tcp-loose", "tcp with cache=loose (like for like: qemu-9p-loose)"},
	{"relay", "union9p over a virtio-serial port, guest-mount's relay (read/write) and trans=fd, cache=mmap, msize=512000"},
	{"relay-splice", "the same relay with guest-to-host splice(2) and 1 MiB reads"},
	{SideReference, "QEMU's virtio-9p (-virtfs local, passthrough), trans=virtio, cache=mmap, msize=512000"},
	{"qemu-9p-loose", "the same with cache=loose"},
	{SideFuseOverlayfs, "QEMU's virtio-9p (-virtfs local, passthrough) exporting a host fuse-overlayfs mount of the union's lower (a separate upper), trans=virtio, cache=mmap, msize=512000: the virtfs path with a stand-in FUSE union server"},
	{"9p-overlay", "QEMU's virtio-9p as a read-only lower + the guest's own overlayfs with a tmpfs upper (writes stay in guest RAM)"},
}

// SideVirtiofs is the union over the virtiofs transport.
const SideVirtiofs = "virtiofs"

// SideVirtfs is the union over the virtfs transport.
const SideVirtfs = "virtfs"

// SideTCP is the default path of `union9p qemu` and guest-mount.
const SideTCP = "tcp"

// SideFuseOverlayfs is QEMU's virtio-9p over a host fuse-overlayfs
// mount: a stand-in for a FUSE frontend of union9p.
const SideFuseOverlayfs = "fuse-overlayfs"

// SideReference is the side the others are compared with.
const SideReference = "qemu-9p"

// The workloads, in the order the guest runs them in each round.
const (
	WorkloadTar       = "tar"       // tar x of the tree's tarball into a new directory
	WorkloadStat      = "stat"      // find TREE | xargs stat
	WorkloadDDWrite   = "ddwrite"   // dd if=/dev/zero bs=1M conv=fsync into a new file
	WorkloadDDRead    = "ddread"    // dd of the file just written, bs=1M, to /dev/null
	WorkloadLowerRead = "lowerread" // dd of a file of the shared content (the lower), bs=1M
)

// Workloads lists the workload keys in run order.
var Workloads = []string{WorkloadTar, WorkloadStat, WorkloadDDWrite, WorkloadDDRead, WorkloadLowerRead}
