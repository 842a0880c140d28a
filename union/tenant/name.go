package tenant

import (
	"errors"
	"fmt"
)

// MaxNameLen is the longest tenant name, in bytes: a name is one host
// directory entry, and NAME_MAX is 255.
const MaxNameLen = 255

// ErrBadName is wrapped by every error ValidName returns.
var ErrBadName = errors.New("bad tenant name")

// ValidName checks that name may name a tenant. A name is one plain path
// component from a deliberately small alphabet:
//
//   - 1 to 255 bytes;
//   - only ASCII letters, digits, '_', '-' and '.';
//   - the first byte is a letter or a digit.
//
// So a name can never be empty, ".", "..", a hidden entry (".x", the prefix
// the registry keeps for its own temporary names), contain '/' or NUL or a
// control character or anything a shell or a unit file would quote, or
// start with '-' (which would read as a command-line flag). Names are
// case-sensitive, as the host directory entries that hold them.
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrBadName)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrBadName, len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return fmt.Errorf("%w: %q must start with a letter or a digit", ErrBadName, name)
		}
		if !alnum && c != '_' && c != '-' && c != '.' {
			return fmt.Errorf("%w: %q has byte %q at %d; use letters, digits, '_', '-' and '.'", ErrBadName, name, c, i)
		}
	}
	return nil
}
