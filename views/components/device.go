package components

import (
	"fmt"
	"net/url"
	"sort"
	"time"
)

// DeviceRow is one signed-in device as its row shows it. pages.DeviceRow names this same type; it
// is defined here so that the row component can take it without importing pages.
type DeviceRow struct {
	ID           string // the sid, used in the form actions /devices/{ID}/rename and /devices/{ID}/signout
	Name         string // the device's name (user-given, or a default like "Firefox on macOS")
	Kind         string // "phone", "tablet", "computer" or "app" (auth.DescribeDeviceKind): the row's icon
	Browser, OS  string // from the user agent, e.g. "Firefox 121", "macOS"; may be empty
	IP           string
	Location     string // approximate place of IP ("Lisbon, Portugal") when GATEHOUSE_GEOIP_DB is set; may be empty
	SignedInAt   time.Time
	LastActiveAt time.Time
	Current      bool   // "This device"
	SignedInWith string // how it signed in, in words: "Password", "Password and authenticator app", "Passkey"
	RenameValue  string // the value to show in the rename field (the name, or the rejected input)
	RenameError  string // error next to the rename field of this row
	// Label names the device in its controls' accessible names ("Sign out Label"). Arrange sets
	// it: the name, with the browser and system or the sign-in time added when names repeat.
	Label string
}

// label is the name the row's controls use: Label when set, else the device's name.
func (d DeviceRow) label() string {
	if d.Label != "" {
		return d.Label
	}
	return d.Name
}

// renameField is the row's rename field, with the error of a refused rename.
func (d DeviceRow) renameField() FieldProps {
	return FieldProps{ID: "device-name-" + d.ID, Name: "name", Label: "New name for " + d.label(), Value: d.RenameValue,
		Error: d.RenameError, Required: true, MaxLength: 64}
}

// RenameErrors lists the refused renames of rows (as Arrange labels them) for the page's error
// summary, each linking to its row's field.
func RenameErrors(rows []DeviceRow) []FieldError {
	var out []FieldError
	for _, d := range rows {
		out = append(out, ErrorsOf(d.renameField())...)
	}
	return out
}

// Arrange returns the rows in the order "Your devices" shows them (this device first, then the
// others by last activity, most recent first) with a Label on each that no other row shares,
// so that a screen reader can tell "Sign out Rae's phone" from the other Rae's phone.
func Arrange(rows []DeviceRow) []DeviceRow {
	out := append([]DeviceRow(nil), rows...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Current != out[j].Current {
			return out[i].Current
		}
		return out[i].LastActiveAt.After(out[j].LastActiveAt)
	})
	for i := range out {
		out[i].Label = out[i].Name
	}
	distinguish(out, func(d DeviceRow) string { return d.Name + " (" + software(d.Browser, d.OS) + ")" })
	distinguish(out, func(d DeviceRow) string {
		return d.Name + " (" + software(d.Browser, d.OS) + ", signed in " + d.SignedInAt.UTC().Format("2 Jan 2006 15:04") + " UTC)"
	})
	distinguish(out, func(d DeviceRow) string { return d.Label })
	return out
}

// distinguish relabels, with longer, every row whose Label another row shares. Its last use
// (longer returning the Label unchanged) numbers what is still shared: "Rae's phone (2)".
func distinguish(rows []DeviceRow, longer func(DeviceRow) string) {
	count := map[string]int{}
	for _, d := range rows {
		count[d.Label]++
	}
	seen := map[string]int{}
	for i, d := range rows {
		if count[d.Label] < 2 {
			continue
		}
		next := longer(d)
		if next == d.Label {
			seen[d.Label]++
			next = fmt.Sprintf("%s (%d)", d.Label, seen[d.Label])
		}
		rows[i].Label = next
	}
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

// kindOf is the icon id in static/icons.svg and the text of a kind of device, the text saying it
// for people who do not see the icon. A kind without an icon is drawn and said as an app: a
// client the portal cannot place.
func kindOf(kind string) (id, text string) {
	switch kind {
	case "phone":
		return kind, "Phone"
	case "tablet":
		return kind, "Tablet"
	case "computer":
		return kind, "Computer"
	}
	return "app", "App"
}

// DeviceKindText says a kind of device in words: "Phone", "Tablet", "Computer" or "App".
func DeviceKindText(kind string) string {
	_, text := kindOf(kind)
	return text
}

// iconHref is where the icon of a kind of device is drawn from: a <symbol> of the sprite.
func iconHref(kind string) string {
	id, _ := kindOf(kind)
	return "/static/icons.svg#" + id
}

// place is an IP address with its approximate location when known: "203.0.113.7 · Lisbon,
// Portugal", or "Unknown" without an address.
func place(ip, location string) string {
	if ip == "" || location == "" {
		return orUnknown(ip)
	}
	return ip + " · " + location
}

// orUnknown is s, or "Unknown" when s is empty.
func orUnknown(s string) string {
	if s == "" {
		return "Unknown"
	}
	return s
}

// DeviceURL is the path of a device's details page, /devices/{id}, its id one path segment
// whatever characters it holds.
func DeviceURL(id string) string {
	return "/devices/" + url.PathEscape(id)
}

// devicePath is the path of an action on one device, e.g. /devices/{id}/rename.
func devicePath(id, action string) string {
	return DeviceURL(id) + "/" + action
}

// SignInMethod says in words how a session signed in, from its amr values.
func SignInMethod(amr []string) string {
	has := map[string]bool{}
	for _, m := range amr {
		has[m] = true
	}
	switch {
	case has["pwd"] && has["otp"]:
		return "Password and authenticator app"
	case has["pwd"] && has["rec"]:
		return "Password and recovery code"
	case has["pwd"] && has["hwk"]:
		return "Password and passkey"
	case has["hwk"]:
		return "Passkey"
	case has["pwd"]:
		return "Password"
	}
	return ""
}
