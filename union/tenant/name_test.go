package tenant

import (
	"errors"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"guest-01", true},
		{"vm_7.test", true},
		{"A..b", true},
		{"9", true},
		{strings.Repeat("x", 255), true},
		{"", false},
		{"/", false},
		{".", false},
		{"..", false},
		{".hidden", false},
		{"-flag", false},
		{"_x", false},
		{"a/b", false},
		{"../a", false},
		{"a\x00b", false},
		{"a b", false},
		{"a\nb", false},
		{"tab\t", false},
		{"ünï", false},
		{"a:b", false},
		{"a*", false},
		{strings.Repeat("x", 256), false},
		{strings.Repeat("x", 4096), false},
	}
	for _, tt := range tests {
		err := ValidName(tt.name)
		if tt.ok && err != nil {
			t.Errorf("ValidName(%q) = %v, want ok", tt.name, err)
		}
		if !tt.ok && !errors.Is(err, ErrBadName) {
			t.Errorf("ValidName(%q) = %v, want ErrBadName", tt.name, err)
		}
	}
}
