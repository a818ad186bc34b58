package pages_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"gatehouse/views/pages"
)

const token = "csrf-token-123"

var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func signedIn(title string) pages.Frame {
	return pages.Frame{Title: title, SignedInEmail: "ada@example.com", CSRFToken: token}
}

func signedOut(title string) pages.Frame {
	return pages.Frame{Title: title, CSRFToken: token}
}

// render renders a page and parses it as a browser would.
func render(t *testing.T, c templ.Component) *goquery.Document {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	doc, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc
}

func text(s *goquery.Selection) string { return strings.Join(strings.Fields(s.Text()), " ") }

// named keeps the elements matching selector whose accessible name (aria-label, else text) is name.
func named(in *goquery.Selection, selector, name string) *goquery.Selection {
	return in.Find(selector).FilterFunction(func(_ int, s *goquery.Selection) bool {
		if label, ok := s.Attr("aria-label"); ok {
			return label == name
		}
		return text(s) == name
	})
}

func button(in *goquery.Selection, name string) *goquery.Selection { return named(in, "button", name) }
func link(in *goquery.Selection, name string) *goquery.Selection   { return named(in, "a", name) }

// field is the one input labelled label inside in, found through <label for>.
func field(t *testing.T, in *goquery.Selection, label string) *goquery.Selection {
	t.Helper()
	labels := in.Find("label").FilterFunction(func(_ int, s *goquery.Selection) bool { return text(s) == label })
	if labels.Length() != 1 {
		t.Fatalf("%d labels %q, want 1", labels.Length(), label)
	}
	id := labels.AttrOr("for", "")
	input := in.Find("input").FilterFunction(func(_ int, s *goquery.Selection) bool { return s.AttrOr("id", "") == id })
	if id == "" || input.Length() != 1 {
		t.Fatalf("label %q points at %q, which is %d inputs", label, id, input.Length())
	}
	return input
}

// wantFieldError checks that the field labelled label shows message right after it, tied to it
// with aria-describedby, and is marked aria-invalid.
func wantFieldError(t *testing.T, in *goquery.Selection, label, message string) {
	t.Helper()
	input := field(t, in, label)
	if got := input.AttrOr("aria-invalid", ""); got != "true" {
		t.Errorf("%q: aria-invalid = %q, want true", label, got)
	}
	next := input.Next()
	if got := text(next); got != message {
		t.Errorf("%q: element after the input says %q, want %q", label, got, message)
	}
	errorID := next.AttrOr("id", "")
	if errorID == "" || !strings.Contains(" "+input.AttrOr("aria-describedby", "")+" ", " "+errorID+" ") {
		t.Errorf("%q: aria-describedby = %q, want it to name the error %q", label, input.AttrOr("aria-describedby", ""), errorID)
	}
}

func wantNoFieldError(t *testing.T, in *goquery.Selection, label string) {
	t.Helper()
	input := field(t, in, label)
	if _, ok := input.Attr("aria-invalid"); ok {
		t.Errorf("%q: has aria-invalid without an error", label)
	}
	if in.Find(".field-error").Length() != 0 {
		t.Errorf("an error is shown: %q", text(in.Find(".field-error")))
	}
}

// wantPostForm checks that the form holding the button named buttonName posts to action.
func wantPostForm(t *testing.T, in *goquery.Selection, buttonName, action string) {
	t.Helper()
	b := button(in, buttonName)
	if b.Length() != 1 {
		t.Fatalf("%d buttons %q, want 1", b.Length(), buttonName)
	}
	form := b.Closest("form")
	if got := form.AttrOr("method", ""); got != "post" {
		t.Errorf("%q: form method = %q, want post", buttonName, got)
	}
	if got := form.AttrOr("action", ""); got != action {
		t.Errorf("%q: form action = %q, want %q", buttonName, got, action)
	}
}

// wantLink checks that there is exactly one link named name and that it goes to href.
func wantLink(t *testing.T, in *goquery.Selection, name, href string) {
	t.Helper()
	l := link(in, name)
	if l.Length() != 1 {
		t.Fatalf("%d links %q, want 1", l.Length(), name)
	}
	if got := l.AttrOr("href", ""); got != href {
		t.Errorf("link %q goes to %q, want %q", name, got, href)
	}
}

func devicesPage() pages.DevicesPage {
	return pages.DevicesPage{
		Frame: signedIn("Your devices"),
		Now:   now,
		Devices: []pages.DeviceRow{
			{
				ID: "sid-laptop", Name: "Ada's laptop", Browser: "Firefox 121", OS: "macOS", IP: "192.0.2.1",
				SignedInAt: now.Add(-2 * 24 * time.Hour), LastActiveAt: now.Add(-5 * time.Minute),
				Current: true, RenameValue: "Ada's laptop",
			},
			{
				ID: "sid-phone", Name: "<script>alert(1)</script>", Browser: "Safari 17", OS: "iOS", IP: "198.51.100.7",
				SignedInAt: now.Add(-3 * time.Hour), LastActiveAt: now.Add(-30 * time.Second),
				RenameValue: "<script>alert(1)</script>",
			},
		},
		Events: []pages.EventRow{
			{Text: "New sign-in on Ada's laptop.", IP: "192.0.2.1", At: now.Add(-2 * 24 * time.Hour)},
			{
				Text:   "Someone may have a copy of your sign-in on Old tablet; we signed that device out.",
				Advice: "If this wasn't you, change your password.", AdviceLink: "/account", AdviceLinkText: "Change your password",
				IP: "203.0.113.9", At: now.Add(-time.Hour), Alarming: true,
			},
		},
	}
}

func TestEveryPage(t *testing.T) {
	tests := []struct {
		name      string
		page      templ.Component
		title     string // in <title>, before " · Gatehouse"
		heading   string
		postForms int // including the header's sign-out form when signed in
		signedIn  bool
	}{
		{"login", pages.Login(pages.LoginPage{Frame: signedOut("Sign in"), SignupEnabled: true}), "Sign in", "Sign in", 2, false}, // the password's and the passkey's (shown by its script)
		{"signup", pages.Signup(pages.SignupPage{Frame: signedOut("Create your account")}), "Create your account", "Create your account", 1, false},
		{"devices", pages.Devices(devicesPage()), "Your devices", "Your devices", 1 + 2*2 + 1, true},
		{"confirm", pages.ConfirmSignoutEverywhere(pages.ConfirmSignoutEverywherePage{Frame: signedIn("Sign out everywhere?")}), "Sign out everywhere?", "Sign out everywhere?", 2, true},
		{"account", pages.Account(pages.AccountPage{Frame: signedIn("Account"), Email: "ada@example.com"}), "Account", "Account", 6, true}, // sign-out, display name, email change, sign-in notices, password change, delete
		{"error signed out", pages.Error(pages.ErrorPage{Frame: signedOut("Page not found"), Status: 404, Heading: "Page not found", Message: "There is nothing here."}), "Page not found", "Page not found", 0, false},
		{"error signed in", pages.Error(pages.ErrorPage{Frame: signedIn("Too many requests"), Status: 429, Heading: "Too many requests", Message: "Wait a minute."}), "Too many requests", "Too many requests", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := render(t, tt.page)

			if got, want := text(doc.Find("title")), tt.title+" · Gatehouse"; got != want {
				t.Errorf("title = %q, want %q", got, want)
			}
			if got := doc.Find("html").AttrOr("lang", ""); got != "en" {
				t.Errorf("lang = %q, want en", got)
			}
			if got := text(doc.Find("main h1")); got != tt.heading {
				t.Errorf("h1 = %q, want %q", got, tt.heading)
			}
			wantLink(t, doc.Find("header"), "Gatehouse", "/")

			forms := doc.Find(`form[method="post"]`)
			if forms.Length() != tt.postForms {
				t.Errorf("%d POST forms, want %d", forms.Length(), tt.postForms)
			}
			if n := doc.Find("form").Not(`[method="post"]`).Length(); n != 0 {
				t.Errorf("%d forms without method=post", n)
			}
			forms.Each(func(_ int, f *goquery.Selection) {
				csrf := f.Find(`input[type="hidden"][name="_csrf"]`)
				if csrf.Length() != 1 || csrf.AttrOr("value", "") != token {
					t.Errorf("form %q: want one hidden _csrf with the token, got %d", f.AttrOr("action", ""), csrf.Length())
				}
			})

			// A Content-Security-Policy without 'unsafe-inline' is applied: nothing inline may be needed,
			// and a script comes from the portal's own /static/.
			if n := doc.Find("script:not([src]), style, [style]").Length(); n != 0 {
				t.Errorf("%d inline scripts or styles", n)
			}
			doc.Find("script[src]").Each(func(_ int, s *goquery.Selection) {
				if src := s.AttrOr("src", ""); !strings.HasPrefix(src, "/static/") {
					t.Errorf("script from %q, want one of /static/", src)
				}
			})
			if got := doc.Find(`link[rel="stylesheet"]`).AttrOr("href", ""); got != "/static/app.css" {
				t.Errorf("stylesheet = %q, want /static/app.css", got)
			}

			header := doc.Find("header")
			if !tt.signedIn {
				if n := header.Find("nav, form").Length(); n != 0 {
					t.Errorf("signed out, yet the header has %d nav or forms", n)
				}
				return
			}
			wantLink(t, header, "Your devices", "/devices")
			wantLink(t, header, "Account", "/account")
			if !strings.Contains(text(header), "ada@example.com") {
				t.Errorf("header %q does not show the signed-in email", text(header))
			}
			if n := button(doc.Selection, "Sign out").Length(); n != 1 {
				t.Errorf("%d buttons named \"Sign out\" on the page, want only the header's", n)
			}
			wantPostForm(t, header, "Sign out", "/logout")
		})
	}
}

func TestFlashIsAStatus(t *testing.T) {
	page := devicesPage()
	page.Flash = "Device renamed."
	doc := render(t, pages.Devices(page))
	if got := text(doc.Find(`[role="status"]`)); got != "Device renamed." {
		t.Errorf("status = %q, want %q", got, "Device renamed.")
	}

	doc = render(t, pages.Devices(devicesPage()))
	if n := doc.Find(`[role="status"]`).Length(); n != 0 {
		t.Errorf("%d status notices without a flash", n)
	}
}

func TestDevicesRows(t *testing.T) {
	doc := render(t, pages.Devices(devicesPage()))

	rows := doc.Find(`ul[aria-label="Devices"] > li`)
	if rows.Length() != 2 {
		t.Fatalf("%d device rows, want 2", rows.Length())
	}
	laptop, phone := rows.Eq(0), rows.Eq(1)

	if got := text(laptop.Find("h2")); got != "Ada's laptop" {
		t.Errorf("first heading = %q", got)
	}
	badges := doc.Find(".badge").FilterFunction(func(_ int, s *goquery.Selection) bool { return text(s) == "This device" })
	if badges.Length() != 1 || badges.Closest("li").Get(0) != laptop.Get(0) {
		t.Errorf("want one \"This device\" badge, on the laptop; got %d", badges.Length())
	}
	for _, want := range []string{"Firefox 121 on macOS", "192.0.2.1", "2 days ago", "5 minutes ago"} {
		if !strings.Contains(text(laptop), want) {
			t.Errorf("laptop row %q does not show %q", text(laptop), want)
		}
	}
	for _, want := range []string{"Safari 17 on iOS", "198.51.100.7", "3 hours ago", "just now"} {
		if !strings.Contains(text(phone), want) {
			t.Errorf("phone row %q does not show %q", text(phone), want)
		}
	}

	signedInAt := laptop.Find("time").First()
	if got := signedInAt.AttrOr("datetime", ""); got != "2026-03-08T12:00:00Z" {
		t.Errorf("datetime = %q, want RFC 3339", got)
	}
	if got := signedInAt.AttrOr("title", ""); got != "8 Mar 2026, 12:00:00 UTC" {
		t.Errorf("title = %q, want the exact time", got)
	}

	wantPostForm(t, laptop, "Save name for Ada's laptop", "/devices/sid-laptop/rename")
	wantPostForm(t, laptop, "Sign out Ada's laptop", "/devices/sid-laptop/signout")
	wantPostForm(t, phone, "Save name for <script>alert(1)</script>", "/devices/sid-phone/rename")
	wantPostForm(t, phone, "Sign out <script>alert(1)</script>", "/devices/sid-phone/signout")

	name := field(t, laptop, "New name for Ada's laptop")
	if name.AttrOr("name", "") != "name" || name.AttrOr("maxlength", "") != "64" || name.AttrOr("value", "") != "Ada's laptop" {
		t.Errorf("rename field: name=%q maxlength=%q value=%q", name.AttrOr("name", ""), name.AttrOr("maxlength", ""), name.AttrOr("value", ""))
	}
	if _, ok := name.Attr("required"); !ok {
		t.Error("rename field is not required")
	}
	wantNoFieldError(t, laptop, "New name for Ada's laptop")
}

func TestDevicesNameIsShownAsText(t *testing.T) {
	doc := render(t, pages.Devices(devicesPage()))

	if n := doc.Find(`script:not([src^="/static/"])`).Length(); n != 0 {
		t.Fatalf("a device name became %d <script> elements", n)
	}
	phone := doc.Find(`ul[aria-label="Devices"] > li`).Eq(1)
	if got := text(phone.Find("h2")); got != "<script>alert(1)</script>" {
		t.Errorf("heading = %q, want the name as text", got)
	}
	if got := field(t, phone, "New name for <script>alert(1)</script>").AttrOr("value", ""); got != "<script>alert(1)</script>" {
		t.Errorf("rename value = %q", got)
	}
}

func TestDevicesRenameError(t *testing.T) {
	page := devicesPage()
	page.Devices[1].RenameValue = strings.Repeat("x", 65)
	page.Devices[1].RenameError = "Use at most 64 characters."
	doc := render(t, pages.Devices(page))

	rows := doc.Find(`ul[aria-label="Devices"] > li`)
	wantFieldError(t, rows.Eq(1), "New name for <script>alert(1)</script>", "Use at most 64 characters.")
	wantNoFieldError(t, rows.Eq(0), "New name for Ada's laptop")
	if got := field(t, rows.Eq(1), "New name for <script>alert(1)</script>").AttrOr("value", ""); got != strings.Repeat("x", 65) {
		t.Errorf("rename keeps %q, want the rejected input", got)
	}
	// A refused rename stays in view: its disclosure is open, the others are closed.
	if _, open := rows.Eq(1).Find("details").Attr("open"); !open {
		t.Error("the refused rename's disclosure is closed")
	}
	if _, open := rows.Eq(0).Find("details").Attr("open"); open {
		t.Error("a rename disclosure without an error is open")
	}
}

func TestDevicesPageActionsAndActivity(t *testing.T) {
	doc := render(t, pages.Devices(devicesPage()))

	wantPostForm(t, doc.Selection, "Sign out all other devices", "/devices/signout-others")
	wantLink(t, doc.Selection, "Sign out everywhere", "/devices/signout-everywhere")

	headings := doc.Find("h2").FilterFunction(func(_ int, s *goquery.Selection) bool { return text(s) == "Recent security activity" })
	if headings.Length() != 1 {
		t.Errorf("%d \"Recent security activity\" headings, want 1", headings.Length())
	}
	events := doc.Find(`ul[aria-label="Security activity"] > li`)
	if events.Length() != 2 {
		t.Fatalf("%d events, want 2", events.Length())
	}
	calm, alarming := events.Eq(0), events.Eq(1)
	if calm.HasClass("alarming") || strings.Contains(text(calm), "Warning") {
		t.Errorf("a new sign-in is shown as a warning: %q", text(calm))
	}
	if !alarming.HasClass("alarming") || !strings.HasPrefix(text(alarming), "Warning") {
		t.Errorf("a replay is not shown as a warning: %q", text(alarming))
	}
	wantLink(t, alarming, "Change your password", "/account")
	for _, want := range []string{"Someone may have a copy of your sign-in on Old tablet; we signed that device out.", "If this wasn't you, change your password.", "203.0.113.9", "1 hour ago"} {
		if !strings.Contains(text(alarming), want) {
			t.Errorf("event %q does not show %q", text(alarming), want)
		}
	}
}

// This device comes first, the others by last activity, whatever order the rows arrive in.
func TestDevicesThisDeviceFirstThenByLastActivity(t *testing.T) {
	page := devicesPage()
	page.Devices = []pages.DeviceRow{
		{ID: "old", Name: "Old tablet", LastActiveAt: now.Add(-48 * time.Hour)},
		{ID: "recent", Name: "Rae's phone", LastActiveAt: now.Add(-time.Minute)},
		{ID: "this", Name: "Ada's laptop", LastActiveAt: now.Add(-time.Hour), Current: true},
		{ID: "mid", Name: "Work desktop", LastActiveAt: now.Add(-5 * time.Hour)},
	}
	doc := render(t, pages.Devices(page))
	got := doc.Find(`ul[aria-label="Devices"] > li h2`).Map(func(_ int, s *goquery.Selection) string { return text(s) })
	want := []string{"Ada's laptop", "Rae's phone", "Work desktop", "Old tablet"}
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Errorf("device order %q, want %q", got, want)
	}
}

// Two devices with one name still give every control its own accessible name: the browser and
// system are added, and the sign-in time when those are the same too.
func TestDevicesSameNameControlsAreDistinct(t *testing.T) {
	page := devicesPage()
	page.Devices = []pages.DeviceRow{
		{ID: "a", Name: "Rae's phone", Browser: "Safari 17", OS: "iOS", SignedInAt: now.Add(-time.Hour), LastActiveAt: now, Current: true},
		{ID: "b", Name: "Rae's phone", Browser: "Chrome 120", OS: "Android", SignedInAt: now.Add(-time.Hour), LastActiveAt: now.Add(-time.Minute)},
		{ID: "c", Name: "Headless Chrome on Linux", Browser: "Headless Chrome 120", OS: "Linux", SignedInAt: now.Add(-2 * time.Hour), LastActiveAt: now.Add(-2 * time.Minute)},
		{ID: "d", Name: "Headless Chrome on Linux", Browser: "Headless Chrome 120", OS: "Linux", SignedInAt: now.Add(-3 * time.Hour), LastActiveAt: now.Add(-3 * time.Minute)},
		{ID: "e", Name: "Ada's laptop", Browser: "Firefox 121", OS: "macOS", SignedInAt: now.Add(-time.Hour), LastActiveAt: now.Add(-4 * time.Minute)},
	}
	doc := render(t, pages.Devices(page))

	wantPostForm(t, doc.Selection, "Sign out Rae's phone (Safari 17 on iOS)", "/devices/a/signout")
	wantPostForm(t, doc.Selection, "Sign out Rae's phone (Chrome 120 on Android)", "/devices/b/signout")
	wantPostForm(t, doc.Selection, "Sign out Headless Chrome on Linux (Headless Chrome 120 on Linux, signed in 10 Mar 2026 10:00 UTC)", "/devices/c/signout")
	wantPostForm(t, doc.Selection, "Sign out Headless Chrome on Linux (Headless Chrome 120 on Linux, signed in 10 Mar 2026 09:00 UTC)", "/devices/d/signout")
	wantPostForm(t, doc.Selection, "Sign out Ada's laptop", "/devices/e/signout")
	wantPostForm(t, doc.Selection, "Save name for Rae's phone (Chrome 120 on Android)", "/devices/b/rename")
	field(t, doc.Selection, "New name for Rae's phone (Safari 17 on iOS)")

	names := map[string]int{}
	doc.Find("main button, main summary, main a").Each(func(_ int, s *goquery.Selection) {
		name, ok := s.Attr("aria-label")
		if !ok {
			name = text(s)
		}
		names[name]++
	})
	doc.Find("main label").Each(func(_ int, s *goquery.Selection) { names[text(s)]++ })
	for name, n := range names {
		if n > 1 {
			t.Errorf("%d controls are named %q", n, name)
		}
	}
	if names["Rename Rae's phone (Safari 17 on iOS)"] != 1 {
		t.Errorf("no disclosure named \"Rename Rae's phone (Safari 17 on iOS)\": %v", names)
	}
}

// Rename is a <details> disclosure, closed by default, with the visible summary "Rename" (named
// for its device) and the rename form inside it, so the row stays short and no script is needed.
func TestDevicesRenameIsADisclosure(t *testing.T) {
	doc := render(t, pages.Devices(devicesPage()))
	laptop := doc.Find(`ul[aria-label="Devices"] > li`).First()
	details := laptop.Find("details")
	if details.Length() != 1 {
		t.Fatalf("%d <details> in the row, want 1", details.Length())
	}
	if _, open := details.Attr("open"); open {
		t.Error("the rename disclosure is open without an error")
	}
	summary := details.Children().First()
	if goquery.NodeName(summary) != "summary" {
		t.Fatalf("first child of <details> is <%s>, want <summary>", goquery.NodeName(summary))
	}
	if got := text(summary); got != "Rename Ada's laptop" {
		t.Errorf("summary's name %q, want \"Rename Ada's laptop\"", got)
	}
	if got := text(summary.Find(".visually-hidden")); got != "Ada's laptop" {
		t.Errorf("summary's hidden part %q: want only \"Rename\" visible", got)
	}
	if form := details.Find(`form[action="/devices/sid-laptop/rename"]`); form.Length() != 1 {
		t.Error("the rename form is not inside the disclosure")
	}
	if laptop.Find(`details form[action$="/signout"]`).Length() != 0 {
		t.Error("sign-out is hidden inside the rename disclosure")
	}
}

// With only this device there is nothing else to sign out: "Sign out all other devices" is not
// offered. "Sign out everywhere" always is, in the stronger (danger) style; the lesser action
// has the outline style.
func TestDevicesSignOutActions(t *testing.T) {
	page := devicesPage()
	doc := render(t, pages.Devices(page))
	if got := button(doc.Selection, "Sign out all other devices"); !got.HasClass("danger-outline") || got.HasClass("danger") {
		t.Errorf("\"Sign out all other devices\" class %q, want danger-outline", got.AttrOr("class", ""))
	}
	if got := link(doc.Selection, "Sign out everywhere"); !got.HasClass("danger") {
		t.Errorf("\"Sign out everywhere\" class %q, want danger", got.AttrOr("class", ""))
	}

	page.Devices = page.Devices[:1]
	doc = render(t, pages.Devices(page))
	if n := button(doc.Selection, "Sign out all other devices").Length(); n != 0 {
		t.Errorf("%d \"Sign out all other devices\" buttons with one device, want none", n)
	}
	if doc.Find(`form[action="/devices/signout-others"]`).Length() != 0 {
		t.Error("the sign-out-others form is there with one device")
	}
	wantLink(t, doc.Selection, "Sign out everywhere", "/devices/signout-everywhere")
}

// An event shows what happened and, when there is advice, the advice with its link; without
// advice there is no empty paragraph.
func TestDevicesEventAdvice(t *testing.T) {
	doc := render(t, pages.Devices(devicesPage()))
	events := doc.Find(`ul[aria-label="Security activity"] > li`)
	if n := events.Eq(0).Find(".event-advice").Length(); n != 0 {
		t.Errorf("%d advice paragraphs on an event without advice", n)
	}
	advice := events.Eq(1).Find(".event-advice")
	if got := text(advice); got != "If this wasn't you, change your password. Change your password" {
		t.Errorf("advice %q", got)
	}
}

// The layout starts with a "Skip to content" link to <main id="main">, and marks the nav link of
// the current page with aria-current="page" (and no other).
func TestSkipLinkAndCurrentNav(t *testing.T) {
	page := devicesPage()
	page.Path = "/devices"
	doc := render(t, pages.Devices(page))
	first := doc.Find("body a").First()
	if text(first) != "Skip to content" || first.AttrOr("href", "") != "#main" {
		t.Errorf("first link %q → %q, want \"Skip to content\" → #main", text(first), first.AttrOr("href", ""))
	}
	if doc.Find("main#main").Length() != 1 {
		t.Error("no <main id=\"main\"> for the skip link")
	}
	nav := doc.Find(`nav[aria-label="Main"]`)
	if got := nav.Find(`a[aria-current="page"]`); got.Length() != 1 || text(got) != "Your devices" {
		t.Errorf("current nav link %q (%d), want \"Your devices\"", text(got), got.Length())
	}

	page.Path = "/elsewhere"
	doc = render(t, pages.Devices(page))
	if n := doc.Find(`[aria-current]`).Length(); n != 0 {
		t.Errorf("%d links marked current on a page outside the nav", n)
	}
}

func TestConfirmSignoutEverywhere(t *testing.T) {
	doc := render(t, pages.ConfirmSignoutEverywhere(pages.ConfirmSignoutEverywherePage{Frame: signedIn("Sign out everywhere?")}))

	wantPostForm(t, doc.Selection, "Yes, sign out everywhere", "/devices/signout-everywhere")
	wantLink(t, doc.Find("main"), "Cancel", "/devices")
}

func TestLogin(t *testing.T) {
	doc := render(t, pages.Login(pages.LoginPage{
		Frame: signedOut("Sign in"), Email: "ada@example.com", Next: "/devices", Error: "Wrong email or password.", SignupEnabled: true,
	}))

	if got := text(doc.Find(`[role="alert"]`)); got != "Wrong email or password." {
		t.Errorf("alert = %q", got)
	}
	email := field(t, doc.Selection, "Email")
	if email.AttrOr("type", "") != "email" || email.AttrOr("autocomplete", "") != "username webauthn" || email.AttrOr("value", "") != "ada@example.com" {
		t.Errorf("email field: type=%q autocomplete=%q value=%q", email.AttrOr("type", ""), email.AttrOr("autocomplete", ""), email.AttrOr("value", ""))
	}
	password := field(t, doc.Selection, "Password")
	if password.AttrOr("type", "") != "password" || password.AttrOr("autocomplete", "") != "current-password" {
		t.Errorf("password field: type=%q autocomplete=%q", password.AttrOr("type", ""), password.AttrOr("autocomplete", ""))
	}
	if v, ok := password.Attr("value"); ok {
		t.Errorf("password field has a value %q", v)
	}
	if got := doc.Find(`input[type="hidden"][name="next"]`).AttrOr("value", ""); got != "/devices" {
		t.Errorf("next = %q, want /devices", got)
	}
	wantPostForm(t, doc.Selection, "Sign in", "/login")
	wantLink(t, doc.Selection, "Create an account", "/signup")
}

func TestLoginWithoutSignup(t *testing.T) {
	doc := render(t, pages.Login(pages.LoginPage{Frame: signedOut("Sign in")}))

	if n := link(doc.Selection, "Create an account").Length(); n != 0 {
		t.Errorf("sign-up is off, yet there are %d \"Create an account\" links", n)
	}
	if n := doc.Find(`[role="alert"]`).Length(); n != 0 {
		t.Errorf("%d alerts before any attempt", n)
	}
}

func TestSignup(t *testing.T) {
	doc := render(t, pages.Signup(pages.SignupPage{
		Frame: signedOut("Create your account"), Email: "ada@example", DisplayName: "Ada",
		Errors: map[string]string{
			"email":            "Enter a valid email address.",
			"password":         "Use at least 10 characters.",
			"password_confirm": "The passwords do not match.",
		},
	}))

	wantFieldError(t, doc.Selection, "Email", "Enter a valid email address.")
	wantFieldError(t, doc.Selection, "Password", "Use at least 10 characters.")
	wantFieldError(t, doc.Selection, "Confirm password", "The passwords do not match.")
	if got := field(t, doc.Selection, "Email").AttrOr("value", ""); got != "ada@example" {
		t.Errorf("email = %q, want it kept", got)
	}
	name := field(t, doc.Selection, "Display name (optional)")
	if got := name.AttrOr("value", ""); got != "Ada" {
		t.Errorf("display name = %q, want it kept", got)
	}
	if _, ok := name.Attr("aria-invalid"); ok {
		t.Error("display name is marked invalid without an error")
	}
	for _, label := range []string{"Password", "Confirm password"} {
		input := field(t, doc.Selection, label)
		if _, ok := input.Attr("value"); ok || input.AttrOr("autocomplete", "") != "new-password" {
			t.Errorf("%q: want no value and autocomplete new-password", label)
		}
	}
	wantPostForm(t, doc.Selection, "Create account", "/signup")
	wantLink(t, doc.Find("main"), "Sign in", "/login")
}

func TestAccount(t *testing.T) {
	doc := render(t, pages.Account(pages.AccountPage{
		Frame: signedIn("Account"), Email: "ada@example.com", DisplayName: "Ada",
		Errors: map[string]string{
			"current_password":     "That is not your current password.",
			"new_password_confirm": "The passwords do not match.",
		},
	}))

	wantFieldError(t, doc.Selection, "Current password", "That is not your current password.")
	wantFieldError(t, doc.Selection, "Confirm new password", "The passwords do not match.")
	if _, ok := field(t, doc.Selection, "New password").Attr("aria-invalid"); ok {
		t.Error("new password is marked invalid without an error")
	}
	wantPostForm(t, doc.Selection, "Change password", "/account/password")
	for _, want := range []string{"ada@example.com", "Ada"} {
		if !strings.Contains(text(doc.Find("main")), want) {
			t.Errorf("account page does not show %q", want)
		}
	}
}

func TestError(t *testing.T) {
	doc := render(t, pages.Error(pages.ErrorPage{Frame: signedOut("Page not found"), Status: 404, Heading: "Page not found", Message: "There is nothing at this address."}))

	main := text(doc.Find("main"))
	for _, want := range []string{"404", "Page not found", "There is nothing at this address."} {
		if !strings.Contains(main, want) {
			t.Errorf("error page %q does not show %q", main, want)
		}
	}
}

// markup is text a person may type that must never become an element.
const markup = `"><script>alert(1)</script>`

func TestNoRepeatedIDsAndEveryInputLabelled(t *testing.T) {
	rename := devicesPage()
	rename.Devices[0].RenameError = "Use 1 to 64 characters."
	rename.Devices[1].RenameError = "Use 1 to 64 characters."
	pagesToCheck := map[string]templ.Component{
		"login":   pages.Login(pages.LoginPage{Frame: signedOut("Sign in"), Error: "The email or password is not right."}),
		"signup":  pages.Signup(pages.SignupPage{Frame: signedOut("Create your account"), Errors: map[string]string{"email": "x", "display_name": "x", "password": "x", "password_confirm": "x"}}),
		"devices": pages.Devices(rename),
		"account": pages.Account(pages.AccountPage{Frame: signedIn("Account"), Errors: map[string]string{"current_password": "x", "new_password": "x", "new_password_confirm": "x"}}),
	}
	for name, page := range pagesToCheck {
		t.Run(name, func(t *testing.T) {
			doc := render(t, page)
			seen := map[string]bool{}
			doc.Find("[id]").Each(func(_ int, s *goquery.Selection) {
				id := s.AttrOr("id", "")
				if seen[id] {
					t.Errorf("id %q is used twice, so a label or aria-describedby may point at the wrong element", id)
				}
				seen[id] = true
			})
			doc.Find(`input:not([type="hidden"])`).Each(func(_ int, in *goquery.Selection) {
				id := in.AttrOr("id", "")
				if id == "" || doc.Find(`label[for="`+id+`"]`).Length() != 1 {
					t.Errorf("input %q has no label of its own", in.AttrOr("name", ""))
				}
				for _, ref := range strings.Fields(in.AttrOr("aria-describedby", "")) {
					if doc.Find(`[id="`+ref+`"]`).Length() != 1 {
						t.Errorf("input %q is described by %q, which is not on the page", in.AttrOr("name", ""), ref)
					}
				}
			})
		})
	}
}

func TestAccountNewPasswordHintAndError(t *testing.T) {
	doc := render(t, pages.Account(pages.AccountPage{Frame: signedIn("Account"), Errors: map[string]string{"new_password": "Use at least 10 characters."}}))

	wantFieldError(t, doc.Selection, "New password", "Use at least 10 characters.")
	wantNoFieldError(t, doc.Find(`label[for="field-current_password"]`).Parent(), "Current password")
	ids := strings.Fields(field(t, doc.Selection, "New password").AttrOr("aria-describedby", ""))
	if len(ids) != 2 || text(doc.Find(`[id="`+ids[0]+`"]`)) != "At least 10 characters." {
		t.Errorf("aria-describedby = %q, want the hint and then the error", ids)
	}
	for _, label := range []string{"Current password", "New password", "Confirm new password"} {
		if _, ok := field(t, doc.Selection, label).Attr("value"); ok {
			t.Errorf("%q comes back with a value", label)
		}
	}
}

func TestSignupDisplayNameError(t *testing.T) {
	doc := render(t, pages.Signup(pages.SignupPage{
		Frame: signedOut("Create your account"), Email: "ada@example.com", DisplayName: strings.Repeat("n", 65),
		Errors: map[string]string{"display_name": "Use at most 64 characters."},
	}))

	wantFieldError(t, doc.Selection, "Display name (optional)", "Use at most 64 characters.")
	for _, label := range []string{"Email", "Password", "Confirm password"} {
		if _, ok := field(t, doc.Selection, label).Attr("aria-invalid"); ok {
			t.Errorf("%q is marked invalid without an error", label)
		}
	}
	if got := field(t, doc.Selection, "Display name (optional)").AttrOr("value", ""); got != strings.Repeat("n", 65) {
		t.Errorf("display name = %q, want the rejected input kept", got)
	}
}

// After a failed sign-in the page keeps the email exactly as typed, even when it holds markup,
// shows one alert, and singles out no field: the message must not tell which one was wrong.
func TestLoginFailureKeepsTheEmailAsText(t *testing.T) {
	doc := render(t, pages.Login(pages.LoginPage{
		Frame: signedOut("Sign in"), Email: markup, Next: markup, Error: "The email or password is not right.", SignupEnabled: true,
	}))

	if n := doc.Find("script:not([src])").Length(); n != 0 {
		t.Fatalf("the typed email became %d <script> elements", n)
	}
	if got := field(t, doc.Selection, "Email").AttrOr("value", ""); got != markup {
		t.Errorf("email = %q, want it kept as typed", got)
	}
	if got := doc.Find(`input[type="hidden"][name="next"]`).AttrOr("value", ""); got != markup {
		t.Errorf("next = %q, want it passed through as text", got)
	}
	if _, ok := field(t, doc.Selection, "Password").Attr("value"); ok {
		t.Error("the password field has a value attribute")
	}
	if n := doc.Find(`[role="alert"]`).Length(); n != 1 {
		t.Errorf("%d alerts, want 1", n)
	}
	if n := doc.Find(`[aria-invalid]`).Length(); n != 0 {
		t.Errorf("%d fields singled out by a generic failure", n)
	}
}

func TestMarkupIsShownAsText(t *testing.T) {
	devices := devicesPage()
	devices.Frame.SignedInEmail = markup
	devices.Flash = markup
	devices.Events[0].Text = markup
	cases := map[string]struct {
		page templ.Component
		want []string // texts the page shows verbatim
	}{
		"devices": {pages.Devices(devices), []string{markup}},
		"account": {pages.Account(pages.AccountPage{Frame: signedIn("Account"), Email: markup, DisplayName: markup}), []string{markup}},
		"error":   {pages.Error(pages.ErrorPage{Frame: signedOut(markup), Status: 400, Heading: markup, Message: markup}), []string{markup}},
		"signup":  {pages.Signup(pages.SignupPage{Frame: signedOut("Create your account"), Email: markup, DisplayName: markup, Errors: map[string]string{"email": markup}}), []string{markup}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			doc := render(t, tc.page)
			if n := doc.Find(`script:not([src^="/static/"])`).Length(); n != 0 {
				t.Fatalf("text became %d <script> elements", n)
			}
			for _, want := range tc.want {
				if !strings.Contains(doc.Text(), want) {
					t.Errorf("the page does not show %q as text", want)
				}
			}
		})
	}
}
