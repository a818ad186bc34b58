package components

import (
	"net/url"
	"time"
)

// DeviceRow is one signed-in device as its row shows it. pages.DeviceRow names this same type; it
// is defined here so that the row component can take it without importing pages.
type DeviceRow struct {
	ID           string // the sid, used in the form actions /devices/{ID}/rename and /devices/{ID}/signout
	Name         string // the device's name (user-given, or a default like "Firefox on macOS")
	Browser, OS  string // from the user agent, e.g. "Firefox 121", "macOS"; may be empty
	IP           string
	SignedInAt   time.Time
	LastActiveAt time.Time
	Current      bool   // "This device"
	RenameValue  string // the value to show in the rename field (the name, or the rejected input)
	RenameError  string // error next to the rename field of this row
}

// software says which browser on which system from the parts that are known: "Firefox 121 on
// macOS", "Firefox 121", "macOS", or "Unknown".
func software(browser, os string) string {
	switch {
	case browser != "" && os != "":
		return browser + " on " + os
	case browser != "":
		return browser
	case os != "":
		return os
	}
	return "Unknown"
}

// orUnknown is s, or "Unknown" when s is empty.
func orUnknown(s string) string {
	if s == "" {
		return "Unknown"
	}
	return s
}

// devicePath is the path of an action on one device, e.g. /devices/{id}/rename.
func devicePath(id, action string) string {
	return "/devices/" + url.PathEscape(id) + "/" + action
}
