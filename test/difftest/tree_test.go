package difftest

import (
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// mergedTree describes every object of a merged tree by path ("" is the
// root): its attributes (fileInfo.String), its listing for a directory,
// its content for a file, its target for a symbolic link, and its
// extended attributes with values. Errors met while reading are part of
// the description, so that they are compared rather than hidden.
type mergedTree map[string]string

// maxTreeEntries bounds a capture, in case a union bug makes a loop.
const maxTreeEntries = 20000

func captureTree(fs fsys) mergedTree { return captureTreeFrom(fs, "") }

// captureTreeFrom is captureTree of the subtree at root.
func captureTreeFrom(fs fsys, root string) mergedTree {
	tree := mergedTree{}
	var visit func(p string)
	visit = func(p string) {
		if len(tree) >= maxTreeEntries {
			tree["(too many entries)"] = ""
			return
		}
		var b strings.Builder
		fi, err := fs.Lstat(p)
		if err != nil {
			tree[p] = "lstat: " + renderErr(err)
			return
		}
		b.WriteString(fi.String())
		if names, err := fs.ListXattr(p); err != nil {
			fmt.Fprintf(&b, " listxattr:%s", renderErr(err))
		} else {
			for _, name := range names {
				v, err := fs.GetXattr(p, name)
				if err != nil {
					fmt.Fprintf(&b, " %s:%s", name, renderErr(err))
				} else {
					fmt.Fprintf(&b, " %s=%q", name, v)
				}
			}
		}
		var children []string
		switch fi.typ() {
		case unix.S_IFREG:
			data, err := fs.ReadFile(p)
			if err != nil {
				fmt.Fprintf(&b, " read:%s", renderErr(err))
			} else {
				fmt.Fprintf(&b, " content=%s", abbrev(data))
			}
		case unix.S_IFLNK:
			target, err := fs.Readlink(p)
			if err != nil {
				fmt.Fprintf(&b, " readlink:%s", renderErr(err))
			} else {
				fmt.Fprintf(&b, " target=%q", target)
			}
		case unix.S_IFDIR:
			ents, err := fs.ReadDir(p)
			if err != nil {
				fmt.Fprintf(&b, " readdir:%s", renderErr(err))
			} else {
				ents = sortDirents(ents)
				fmt.Fprintf(&b, " entries=[%s]", renderDirents(ents))
				for _, e := range ents {
					if e.Name != "." && e.Name != ".." {
						children = append(children, joinPath(p, e.Name))
					}
				}
			}
		}
		tree[p] = b.String()
		for _, c := range children {
			if _, seen := tree[c]; !seen {
				visit(c)
			}
		}
	}
	visit(root)
	return tree
}

// treeDiff is a path whose description differs between two trees.
type treeDiff struct {
	Path          string
	Kernel, Union string // "(absent)" where the tree has no such path
}

func (d treeDiff) String() string {
	return fmt.Sprintf("/%s:\n\tkernel: %s\n\tunion:  %s", d.Path, d.Kernel, d.Union)
}

const absent = "(absent)"

// diffTrees returns the paths whose descriptions differ, sorted, at most
// max of them (0: all).
func diffTrees(kernel, union mergedTree, max int) []treeDiff {
	var paths []string
	for p := range kernel {
		paths = append(paths, p)
	}
	for p := range union {
		if _, ok := kernel[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var out []treeDiff
	for _, p := range paths {
		k, kok := kernel[p]
		u, uok := union[p]
		if kok && uok && k == u {
			continue
		}
		if !kok {
			k = absent
		}
		if !uok {
			u = absent
		}
		out = append(out, treeDiff{Path: p, Kernel: k, Union: u})
		if max > 0 && len(out) == max {
			break
		}
	}
	return out
}
