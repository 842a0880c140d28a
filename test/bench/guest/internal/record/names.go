package record

// The sides (mounts) the guest measures.
const (
	// SideUnion9p is the union served by union9p on the host over
	// virtio-serial, mounted with `union9p guest-mount`.
	SideUnion9p = "union9p"
	// SideQEMU is the plain directory served by QEMU's own virtio-9p
	// server (-virtfs), mounted with trans=virtio.
	SideQEMU = "qemu-9p"
)

// The workloads, in the order the guest runs them in each round.
const (
	WorkloadTar     = "tar"     // tar x of the tree's tarball into a new directory
	WorkloadStat    = "stat"    // find TREE | xargs stat
	WorkloadDDWrite = "ddwrite" // dd if=/dev/zero bs=1M conv=fsync into a new file
	WorkloadDDRead  = "ddread"  // dd of the file just written, bs=1M, to /dev/null
)

// Workloads lists the workload keys in run order.
var Workloads = []string{WorkloadTar, WorkloadStat, WorkloadDDWrite, WorkloadDDRead}
