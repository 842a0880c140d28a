package p9srv

import (
	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
)

// Extended attributes, including POSIX ACLs (system.posix_acl_access and
// system.posix_acl_default travel as their binary xattr values). Package
// union hides and refuses the overlay's private attributes.
//
// The library calls GetXattr and ListXattrs only for Txattrwalk, and on
// success makes a new fid that shares this File and closes it when it is
// clunked; hence the extra reference. On failure it answers EINVAL whatever
// the error was, so the real errno is left in the request for the wire tap
// (a missing attribute must be ENODATA, or ls -l and cp -a complain).

// xattrSizeMax is Linux's XATTR_SIZE_MAX and XATTR_LIST_MAX.
const xattrSizeMax = 64 << 10

// GetXattr implements p9.File.GetXattr.
func (f *file) GetXattr(name string) ([]byte, error) {
	v, err := f.node.GetXattr(name)
	if err != nil {
		return nil, f.xattrWalkFailed(errnoValue(err))
	}
	if len(v) > xattrSizeMax {
		return nil, f.xattrWalkFailed(linux.E2BIG)
	}
	f.refs.Add(1)
	return v, nil
}

// ListXattrs implements p9.File.ListXattrs.
func (f *file) ListXattrs() ([]string, error) {
	names, err := f.node.ListXattr()
	if err != nil {
		return nil, f.xattrWalkFailed(errnoValue(err))
	}
	size := 0
	for _, n := range names {
		size += len(n) + 1
	}
	if size > xattrSizeMax {
		return nil, f.xattrWalkFailed(linux.E2BIG)
	}
	if len(names) == 0 {
		// The library encodes an empty list as one NUL byte, which
		// Linux would report as a name "": the tap answers size 0.
		if r := f.srv.requests.current(msgTxattrwalk); r != nil {
			r.emptyXattrList = true
		}
	}
	f.refs.Add(1)
	return names, nil
}

func (f *file) xattrWalkFailed(e linux.Errno) error {
	if r := f.srv.requests.current(msgTxattrwalk); r != nil {
		r.errno = e
	}
	return e
}

// SetXattr implements p9.File.SetXattr; flags are XATTR_CREATE/REPLACE.
func (f *file) SetXattr(name string, data []byte, flags p9.XattrFlags) error {
	return errno(f.node.SetXattr(name, data, int(flags)))
}

// RemoveXattr implements p9.File.RemoveXattr (a Txattrcreate of size 0
// with XATTR_REPLACE, as Linux sends removexattr).
func (f *file) RemoveXattr(name string) error {
	return errno(f.node.RemoveXattr(name))
}
