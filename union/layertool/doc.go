// Package layertool works on the layers of a union while no server serves
// them: it lists what an upper layer changes (Diff), packs it as an OCI
// image layer and unpacks such layers (Export, Import), folds it into a new
// base (Merge), drops copies that equal their lower objects (Vacuum),
// empties it (Reset) and checks and repairs it (Fsck).
//
// The on-disk format is overlayfs's, in the three marker formats package
// whiteout reads: 0/0 device whiteouts and overlay.* xattrs in the
// "trusted." namespace (root) or the "user." one (overlayfs's userxattr,
// unprivileged servers, with xattr whiteouts), and OCI ".wh." files in
// lower layers. Owners kept in QEMU's mapped-xattr format
// (user.virtfs.uid/gid/mode/rdev, written by unprivileged servers) are read
// as the owners clients see. The namespace is chosen as union.Open chooses
// it (Layers.UserXattr overrides it, as overlayfs's userxattr option does).
//
// Safety: every host call is made relative to a directory descriptor, one
// name at a time, without following symbolic links; a layer's content is
// data, never a path to follow. Lower layers are opened read-only and never
// written, except by Merge with InPlace set. Every tool that writes a layer
// first takes the lock that servers hold (union.LockLayers), so it refuses
// to run while a union9p serves those layers, and refuses layers that a
// kernel overlay mount uses (mountinfo).
//
// Concurrency: the tools are plain functions; each opens what it needs and
// closes it before it returns. Nothing is shared between calls.
package layertool
