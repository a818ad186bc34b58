package components

import "testing"

func TestSoftware(t *testing.T) {
	tests := []struct{ browser, os, want string }{
		{"Firefox 121", "macOS", "Firefox 121 on macOS"},
		{"Firefox 121", "", "Firefox 121"},
		{"", "Android", "Android"},
		{"", "", "Unknown"},
	}
	for _, tt := range tests {
		if got := software(tt.browser, tt.os); got != tt.want {
			t.Errorf("software(%q, %q) = %q, want %q", tt.browser, tt.os, got, tt.want)
		}
	}
}

func TestDevicePath(t *testing.T) {
	tests := []struct{ id, action, want string }{
		{"aB3-_x", "rename", "/devices/aB3-_x/rename"},
		{"a/b?c", "signout", "/devices/a%2Fb%3Fc/signout"},
	}
	for _, tt := range tests {
		if got := devicePath(tt.id, tt.action); got != tt.want {
			t.Errorf("devicePath(%q, %q) = %q, want %q", tt.id, tt.action, got, tt.want)
		}
	}
}
