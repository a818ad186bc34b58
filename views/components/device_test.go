package components_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"gatehouse/views/components"
)

var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// renderRow renders one device row as a browser would parse it.
func renderRow(t *testing.T, csrf string, d components.DeviceRow) *goquery.Selection {
	t.Helper()
	var buf bytes.Buffer
	if err := components.Device(now, csrf, d).Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	doc, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	rows := doc.Find("li")
	if rows.Length() != 1 {
		t.Fatalf("%d list items, want one row:\n%s", rows.Length(), buf.String())
	}
	return rows
}

func text(s *goquery.Selection) string { return strings.Join(strings.Fields(s.Text()), " ") }

// fact is what the row shows next to a label of its fact list ("Browser", "IP address", …).
func fact(t *testing.T, row *goquery.Selection, label string) *goquery.Selection {
	t.Helper()
	dt := row.Find("dt").FilterFunction(func(_ int, s *goquery.Selection) bool { return text(s) == label })
	if dt.Length() != 1 {
		t.Fatalf("%d facts labelled %q, want 1", dt.Length(), label)
	}
	return dt.Next().Filter("dd")
}

// form is the form holding the button a person knows by name (its aria-label, else its text).
func form(t *testing.T, row *goquery.Selection, button string) *goquery.Selection {
	t.Helper()
	b := row.Find("button").FilterFunction(func(_ int, s *goquery.Selection) bool {
		if label, ok := s.Attr("aria-label"); ok {
			return label == button
		}
		return text(s) == button
	})
	if b.Length() != 1 {
		t.Fatalf("%d buttons named %q, want 1", b.Length(), button)
	}
	return b.Closest("form")
}

func laptop() components.DeviceRow {
	return components.DeviceRow{
		ID: "aB3-_x", Name: "Ada’s laptop", Kind: "computer", Browser: "Firefox 121", OS: "macOS", IP: "203.0.113.7",
		SignedInAt: now.Add(-3 * 24 * time.Hour), LastActiveAt: now.Add(-5 * time.Minute),
		RenameValue: "Ada’s laptop",
	}
}

// A row shows the device's name as its heading and what a person needs to recognise it: the
// browser and system, the IP address, and when it signed in and was last active, relative to now
// with the exact UTC time on hover.
func TestDeviceRowShowsWhatTheDeviceIs(t *testing.T) {
	row := renderRow(t, "tok", laptop())
	if got := text(row.Find("h2")); got != "Ada’s laptop" {
		t.Errorf("heading %q, want the device's name", got)
	}
	for label, want := range map[string]string{
		"Browser":     "Firefox 121 on macOS",
		"IP address":  "203.0.113.7",
		"Signed in":   "3 days ago (7 Mar 2026, 12:00 UTC)",
		"Last active": "5 minutes ago (10 Mar 2026, 11:55 UTC)",
	} {
		if got := text(fact(t, row, label)); got != want {
			t.Errorf("%s: %q, want %q", label, got, want)
		}
	}
	lastActive := fact(t, row, "Last active").Find("time")
	if got := lastActive.AttrOr("title", ""); got != "10 Mar 2026, 11:55:00 UTC" {
		t.Errorf("Last active title %q, want the exact UTC time", got)
	}
	if got := lastActive.AttrOr("datetime", ""); got != "2026-03-10T11:55:00Z" {
		t.Errorf("Last active datetime %q", got)
	}
}

// What the user agent did not reveal reads "Unknown", never an empty cell or a dangling "on".
func TestDeviceRowSaysWhatIsUnknown(t *testing.T) {
	for _, c := range []struct{ browser, os, want string }{
		{"Firefox 121", "", "Firefox 121"},
		{"", "Android", "Android"},
		{"", "", "Unknown"},
	} {
		d := laptop()
		d.Browser, d.OS, d.IP = c.browser, c.os, ""
		row := renderRow(t, "tok", d)
		if got := text(fact(t, row, "Browser")); got != c.want {
			t.Errorf("browser %q, system %q: Browser shows %q, want %q", c.browser, c.os, got, c.want)
		}
		if got := text(fact(t, row, "IP address")); got != "Unknown" {
			t.Errorf("no IP: IP address shows %q, want Unknown", got)
		}
	}
}

// Only the device in hand carries the "This device" badge.
func TestDeviceRowMarksThisDevice(t *testing.T) {
	other := renderRow(t, "tok", laptop())
	if got := text(other); strings.Contains(got, "This device") {
		t.Errorf("another device's row says %q", got)
	}
	d := laptop()
	d.Current = true
	this := renderRow(t, "tok", d)
	head := this.Find("h2").Parent().Children().Map(func(_ int, s *goquery.Selection) string { return text(s) })
	if strings.Join(head, " | ") != "Ada’s laptop | Computer | This device" {
		t.Errorf("this device's row head %q, want the name, its kind, then \"This device\"", head)
	}
}

// The row's two forms post, with the CSRF token, to the device's own paths: its id is one path
// segment whatever characters it holds. The sign-out button names the device, so that a screen
// reader tells the rows' buttons apart.
func TestDeviceRowFormsActOnThatDevice(t *testing.T) {
	for _, c := range []struct{ id, rename, signout string }{
		{"aB3-_x", "/devices/aB3-_x/rename", "/devices/aB3-_x/signout"},
		{"a/b?c", "/devices/a%2Fb%3Fc/rename", "/devices/a%2Fb%3Fc/signout"},
		{"a b", "/devices/a%20b/rename", "/devices/a%20b/signout"},
	} {
		d := laptop()
		d.ID = c.id
		row := renderRow(t, "csrf-123", d)
		for button, action := range map[string]string{"Save name for Ada’s laptop": c.rename, "Sign out Ada’s laptop": c.signout} {
			f := form(t, row, button)
			if got := f.AttrOr("action", ""); got != action {
				t.Errorf("id %q: %q posts to %q, want %q", c.id, button, got, action)
			}
			if got := strings.ToLower(f.AttrOr("method", "")); got != "post" {
				t.Errorf("id %q: %q form method %q, want post", c.id, button, got)
			}
			if got := f.Find(`input[type="hidden"][name="_csrf"]`).AttrOr("value", ""); got != "csrf-123" {
				t.Errorf("id %q: %q form CSRF token %q", c.id, button, got)
			}
		}
	}
}

// The rename field is labelled "New name for NAME", holds the current name (or what was refused), and
// shows the refusal right after it, tied to it for screen readers.
func TestDeviceRowRenameField(t *testing.T) {
	d := laptop()
	d.RenameValue, d.RenameError = "x\u202ey", "Use letters, digits and ordinary punctuation."
	row := renderRow(t, "tok", d)
	label := row.Find("label").FilterFunction(func(_ int, s *goquery.Selection) bool { return text(s) == "New name for Ada’s laptop" })
	input := row.Find("input#" + label.AttrOr("for", "none"))
	if label.Length() != 1 || input.Length() != 1 {
		t.Fatalf("label %d, input %d: want the \"New name for Ada’s laptop\" label tied to one input", label.Length(), input.Length())
	}
	if got := input.AttrOr("value", ""); got != "x\u202ey" {
		t.Errorf("rename field value %q, want the refused input", got)
	}
	if got := input.AttrOr("name", ""); got != "name" {
		t.Errorf("rename field name %q, want name", got)
	}
	if input.AttrOr("aria-invalid", "") != "true" {
		t.Error("the refused rename field is not aria-invalid")
	}
	errorText := row.Find("#" + input.AttrOr("aria-describedby", "none"))
	if got := text(errorText); got != "Use letters, digits and ordinary punctuation." {
		t.Errorf("rename error %q", got)
	}
}

// A name is shown as text: markup in it is not markup in the page.
func TestDeviceRowEscapesTheName(t *testing.T) {
	d := laptop()
	d.Name = `<img src=x onerror=alert(1)>`
	row := renderRow(t, "tok", d)
	if row.Find("img").Length() != 0 {
		t.Error("the device name became an <img> element")
	}
	if got := text(row.Find("h2")); got != d.Name {
		t.Errorf("heading %q, want the name as text", got)
	}
	form(t, row, "Sign out "+d.Name) // the sign-out button names the device as given
}

// A Label set by Arrange names the row's controls in place of the bare name.
func TestDeviceRowControlsUseTheLabel(t *testing.T) {
	d := laptop()
	d.Label = "Ada’s laptop (Firefox 121 on macOS)"
	row := renderRow(t, "tok", d)
	form(t, row, "Sign out Ada’s laptop (Firefox 121 on macOS)")
	form(t, row, "Save name for Ada’s laptop (Firefox 121 on macOS)")
	if got := text(row.Find("summary")); got != "Rename Ada’s laptop (Firefox 121 on macOS)" {
		t.Errorf("summary %q", got)
	}
	if got := text(row.Find("h2")); got != "Ada’s laptop" {
		t.Errorf("heading %q, want the name alone", got)
	}
}

// Arrange orders this device first, then by last activity, and labels repeated names apart, down
// to a number when even the sign-in time is the same.
func TestArrange(t *testing.T) {
	at := now.Add(-time.Hour)
	rows := components.Arrange([]components.DeviceRow{
		{ID: "1", Name: "Phone", Browser: "Safari 17", OS: "iOS", SignedInAt: at, LastActiveAt: now.Add(-3 * time.Minute)},
		{ID: "2", Name: "Phone", Browser: "Safari 17", OS: "iOS", SignedInAt: at, LastActiveAt: now.Add(-2 * time.Minute)},
		{ID: "3", Name: "Laptop", LastActiveAt: now.Add(-time.Hour), Current: true},
	})
	var got []string
	for _, r := range rows {
		got = append(got, r.ID+"="+r.Label)
	}
	want := []string{"3=Laptop", "2=Phone (Safari 17 on iOS, signed in 10 Mar 2026 11:00 UTC) (1)", "1=Phone (Safari 17 on iOS, signed in 10 Mar 2026 11:00 UTC) (2)"}
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Errorf("Arrange: %q, want %q", got, want)
	}
}

// The kind of device is drawn as an icon from the portal's own sprite, hidden from screen
// readers, and said in words right after the name for them; a kind the portal has no icon for
// is drawn and said as an app. The heading stays the name alone.
func TestDeviceRowShowsTheKindOfDevice(t *testing.T) {
	for _, c := range []struct{ kind, icon, says string }{
		{"phone", "/static/icons.svg#phone", "Phone"},
		{"tablet", "/static/icons.svg#tablet", "Tablet"},
		{"computer", "/static/icons.svg#computer", "Computer"},
		{"app", "/static/icons.svg#app", "App"},
		{"", "/static/icons.svg#app", "App"},
		{"toaster", "/static/icons.svg#app", "App"},
	} {
		d := laptop()
		d.Kind = c.kind
		row := renderRow(t, "tok", d)
		icons := row.Find("svg")
		if icons.Length() != 1 {
			t.Fatalf("kind %q: %d icons, want 1", c.kind, icons.Length())
		}
		if got := icons.Find("use").AttrOr("href", ""); got != c.icon {
			t.Errorf("kind %q: the icon draws %q, want %q", c.kind, got, c.icon)
		}
		if icons.AttrOr("aria-hidden", "") != "true" || icons.AttrOr("focusable", "") != "false" {
			html, _ := goquery.OuterHtml(icons)
			t.Errorf("kind %q: the icon is not hidden from assistive technology: %s", c.kind, html)
		}
		said := row.Find("h2 + .visually-hidden")
		if got := text(said); got != c.says {
			t.Errorf("kind %q: after the name a screen reader hears %q, want %q", c.kind, got, c.says)
		}
		if got := text(row.Find("h2")); got != "Ada’s laptop" {
			t.Errorf("kind %q: heading %q, want the name alone", c.kind, got)
		}
	}
}

// Each row links to its device's details page with a link whose visible text is "Details" and
// whose accessible name says which device, by the row's label; the id is one path segment.
func TestDeviceRowLinksToItsDetails(t *testing.T) {
	for _, c := range []struct{ id, label, href, name string }{
		{"aB3-_x", "", "/devices/aB3-_x", "Details of Ada’s laptop"},
		{"a/b?c", "Ada’s laptop (Firefox 121 on macOS)", "/devices/a%2Fb%3Fc", "Details of Ada’s laptop (Firefox 121 on macOS)"},
	} {
		d := laptop()
		d.ID, d.Label = c.id, c.label
		row := renderRow(t, "tok", d)
		links := row.Find("a")
		if links.Length() != 1 {
			t.Fatalf("%d links in the row, want the details link", links.Length())
		}
		if got := links.AttrOr("href", ""); got != c.href {
			t.Errorf("id %q: details link goes to %q, want %q", c.id, got, c.href)
		}
		if got := text(links); got != c.name {
			t.Errorf("id %q: details link named %q, want %q", c.id, got, c.name)
		}
		if got := text(links.Find(".visually-hidden")); "Details "+got != c.name {
			t.Errorf("id %q: the link shows %q beside \"Details\", want only \"Details\" visible", c.id, got)
		}
	}
}

// With a GeoIP database the IP address is followed by its approximate place; without one, or
// without an address, the fact is as before.
func TestDeviceRowShowsWhereItIs(t *testing.T) {
	for _, c := range []struct{ ip, location, want string }{
		{"203.0.113.7", "Lisbon, Portugal", "203.0.113.7 · Lisbon, Portugal"},
		{"198.51.100.23", "Iceland", "198.51.100.23 · Iceland"},
		{"203.0.113.7", "", "203.0.113.7"},
		{"", "", "Unknown"},
	} {
		d := laptop()
		d.IP, d.Location = c.ip, c.location
		if got := text(fact(t, renderRow(t, "tok", d), "IP address")); got != c.want {
			t.Errorf("IP %q in %q: shows %q, want %q", c.ip, c.location, got, c.want)
		}
	}
}
