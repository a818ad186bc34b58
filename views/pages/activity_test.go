package pages_test

import (
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"gatehouse/views/pages"
)

func phoneDetails() pages.SessionPage {
	return pages.SessionPage{
		Frame: signedIn("Rae's phone"), Now: now, ID: "sid/phone", Name: "Rae's phone", Kind: "phone",
		UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
		Browser:   "Safari 17", OS: "iOS",
		FirstIP: "192.0.2.44", FirstPlace: "Lisbon, Portugal", LastIP: "198.51.100.23", LastPlace: "Iceland",
		SignedInAt: now.Add(-3 * 24 * time.Hour), LastActive: now.Add(-5 * time.Minute), ExpiresAt: now.Add(27 * 24 * time.Hour),
		SignedIn: "Password and authenticator app",
		Events:   []pages.EventRow{{Text: "New sign-in on Rae's phone (password and authenticator app).", IP: "192.0.2.44", At: now.Add(-3 * 24 * time.Hour)}},
	}
}

// A device's page is headed by its name, with the picture of its kind hidden from screen readers
// and the kind said in words among the facts: what it is, where and when it signed in (with the
// approximate place), how, when it signs out by itself, and its full user agent.
func TestSessionDetailsShowsTheDevice(t *testing.T) {
	doc := render(t, pages.SessionDetails(phoneDetails()))
	main := doc.Find("main")
	h1 := main.Find("h1")
	if got := text(h1); got != "Rae's phone" {
		t.Errorf("heading %q, want the device's name alone", got)
	}
	icon := h1.Find("svg")
	if got := icon.Find("use").AttrOr("href", ""); got != "/static/icons.svg#phone" {
		t.Errorf("the heading's icon draws %q, want the phone", got)
	}
	if icon.AttrOr("aria-hidden", "") != "true" {
		t.Error("the heading's icon is not hidden from screen readers")
	}
	wantLink(t, main, "Back to your devices", "/devices")
	for label, want := range map[string]string{
		"Status":              "Signed in",
		"Device":              "Phone",
		"Browser and system":  "Safari 17 on iOS",
		"Signed in with":      "Password and authenticator app",
		"Signed in":           "3 days ago (7 Mar 2026, 12:00 UTC) from 192.0.2.44 · Lisbon, Portugal",
		"Last active":         "5 minutes ago (10 Mar 2026, 11:55 UTC) from 198.51.100.23 · Iceland",
		"Signs out by itself": "in 27 days at the latest (6 Apr 2026, 12:00 UTC)",
		"Full user agent":     phoneDetails().UserAgent,
	} {
		if got := factFor(t, main, label); got != want {
			t.Errorf("%s: %q, want %q", label, got, want)
		}
	}
	if got := text(main.Find("code.user-agent")); got != phoneDetails().UserAgent {
		t.Errorf("user agent in code.user-agent: %q", got)
	}
	wantPostForm(t, main, "Sign out Rae's phone", "/devices/sid%2Fphone/signout")
	activity := main.Find(`ul[aria-label="Activity of Rae's phone"] > li`)
	if activity.Length() != 1 || !strings.Contains(text(activity), "New sign-in on Rae's phone") {
		t.Errorf("the device's own activity: %q", text(activity))
	}
}

// Each kind of device has its own picture and word; a kind without a picture is an app.
func TestSessionDetailsKinds(t *testing.T) {
	for kind, want := range map[string]string{"phone": "Phone", "tablet": "Tablet", "computer": "Computer", "app": "App", "": "App"} {
		p := phoneDetails()
		p.Kind = kind
		doc := render(t, pages.SessionDetails(p))
		if got := factFor(t, doc.Selection, "Device"); got != want {
			t.Errorf("kind %q: Device %q, want %q", kind, got, want)
		}
		icon := "/static/icons.svg#" + strings.ToLower(want)
		if got := doc.Find("main h1 svg use").AttrOr("href", ""); got != icon {
			t.Errorf("kind %q: the icon draws %q, want %q", kind, got, icon)
		}
	}
}

// This device's page says so and offers no sign-out of itself as another device; a signed-out
// device's page says when, without the expiry or a sign-out button.
func TestSessionDetailsStatus(t *testing.T) {
	this := phoneDetails()
	this.Current = true
	doc := render(t, pages.SessionDetails(this))
	if got := factFor(t, doc.Selection, "Status"); got != "Signed in: this is the device you are using" {
		t.Errorf("this device's status %q", got)
	}
	if n := doc.Find(`main form[action$="/signout"]`).Length(); n != 0 {
		t.Errorf("this device's page has %d sign-out forms of its own", n)
	}

	gone := phoneDetails()
	at := now.Add(-2 * time.Hour)
	gone.RevokedAt = &at
	doc = render(t, pages.SessionDetails(gone))
	if got := factFor(t, doc.Selection, "Status"); got != "Signed out 2 hours ago (10 Mar 2026, 10:00 UTC)" {
		t.Errorf("a signed-out device's status %q", got)
	}
	if doc.Find("dt").FilterFunction(func(_ int, s *goquery.Selection) bool { return text(s) == "Signs out by itself" }).Length() != 0 {
		t.Error("a signed-out device still says when it signs out by itself")
	}
	if n := doc.Find(`main form[action$="/signout"]`).Length(); n != 0 {
		t.Errorf("a signed-out device's page has %d sign-out forms", n)
	}
}

// When a device signs out by itself is said relative to now, to the nearest unit, then exactly.
func TestSessionDetailsSaysWhenItSignsOut(t *testing.T) {
	for _, c := range []struct {
		left time.Duration
		want string
	}{
		{30*24*time.Hour - time.Minute, "in 30 days at the latest (9 Apr 2026, 11:59 UTC)"},
		{36 * time.Hour, "in 2 days at the latest (12 Mar 2026, 00:00 UTC)"},
		{5*time.Hour + 10*time.Minute, "in 5 hours at the latest (10 Mar 2026, 17:10 UTC)"},
		{time.Hour - time.Second, "in 60 minutes at the latest (10 Mar 2026, 12:59 UTC)"},
		{90 * time.Second, "in 2 minutes at the latest (10 Mar 2026, 12:01 UTC)"},
		{20 * time.Second, "within a minute at the latest (10 Mar 2026, 12:00 UTC)"},
	} {
		p := phoneDetails()
		p.ExpiresAt = now.Add(c.left)
		if got := factFor(t, render(t, pages.SessionDetails(p)).Selection, "Signs out by itself"); got != c.want {
			t.Errorf("%v left: %q, want %q", c.left, got, c.want)
		}
	}
}

// The full history lists the events and, only when there is another page, a pager: "Older
// activity" to the next page, "Newest activity" back to the first.
func TestActivityPager(t *testing.T) {
	events := []pages.EventRow{{Text: "New sign-in on Rae's phone.", IP: "192.0.2.44", At: now.Add(-time.Hour)}}
	for _, c := range []struct {
		name        string
		newer       bool
		older       string
		wantLinks   map[string]string
		wantNoPager bool
	}{
		{name: "the only page", wantNoPager: true},
		{name: "the first of several", older: "/account/activity?before=51", wantLinks: map[string]string{"Older activity": "/account/activity?before=51"}},
		{name: "a middle page", newer: true, older: "/account/activity?before=12", wantLinks: map[string]string{"Newest activity": "/account/activity", "Older activity": "/account/activity?before=12"}},
		{name: "the last page", newer: true, wantLinks: map[string]string{"Newest activity": "/account/activity"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc := render(t, pages.Activity(pages.ActivityPage{Frame: signedIn("Security activity"), Now: now, Events: events, Newer: c.newer, Older: c.older}))
			if got := text(doc.Find(`main ul[aria-label="Security activity"] > li`)); !strings.Contains(got, "New sign-in on Rae's phone.") {
				t.Errorf("events %q", got)
			}
			pager := doc.Find(`nav[aria-label="Pages of activity"]`)
			if c.wantNoPager {
				if pager.Length() != 0 {
					t.Errorf("a pager on the only page: %q", text(pager))
				}
				return
			}
			if got := pager.Find("a").Length(); got != len(c.wantLinks) {
				t.Errorf("%d pager links, want %d", got, len(c.wantLinks))
			}
			for name, href := range c.wantLinks {
				wantLink(t, pager, name, href)
			}
		})
	}
}

// Both pages are drawn like the rest of the portal: the title, one h1, a way back to "Your
// devices", and nothing inline that the Content-Security-Policy would refuse.
func TestActivityAndDetailsAreWellFormed(t *testing.T) {
	for name, c := range map[string]struct {
		page  templ.Component
		title string
	}{
		"activity":        {pages.Activity(pages.ActivityPage{Frame: signedIn("Security activity"), Now: now}), "Security activity"},
		"session details": {pages.SessionDetails(phoneDetails()), "Rae's phone"},
	} {
		t.Run(name, func(t *testing.T) {
			doc := render(t, c.page)
			if got := text(doc.Find("title")); got != c.title+" · Gatehouse" {
				t.Errorf("title %q", got)
			}
			if n := doc.Find("main h1").Length(); n != 1 {
				t.Errorf("%d h1 elements, want 1", n)
			}
			wantLink(t, doc.Find("main"), "Back to your devices", "/devices")
			if n := doc.Find("script:not([src]), style, [style]").Length(); n != 0 {
				t.Errorf("%d inline scripts or styles", n)
			}
			doc.Find(`form[method="post"]`).Each(func(_ int, f *goquery.Selection) {
				if f.Find(`input[type="hidden"][name="_csrf"]`).AttrOr("value", "") != token {
					t.Errorf("form %q has no CSRF token", f.AttrOr("action", ""))
				}
			})
		})
	}
}

// Every row of "Your devices" links to its device's page, by a name no other link shares, and
// shows where its IP address is when that is known.
func TestDevicesRowsLinkToTheirDetails(t *testing.T) {
	page := devicesPage()
	page.Devices[0].Location = "Lisbon, Portugal"
	doc := render(t, pages.Devices(page))
	wantLink(t, doc.Selection, "Details of Ada's laptop", "/devices/sid-laptop")
	wantLink(t, doc.Selection, "Details of <script>alert(1)</script>", "/devices/sid-phone")
	rows := doc.Find(`ul[aria-label="Devices"] > li`)
	if got := factFor(t, rows.Eq(0), "IP address"); got != "192.0.2.1 · Lisbon, Portugal" {
		t.Errorf("the laptop's IP address %q", got)
	}
	if got := factFor(t, rows.Eq(1), "IP address"); got != "198.51.100.7" {
		t.Errorf("the phone's IP address %q", got)
	}
}
