package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"gatehouse/handlers"
	"gatehouse/models"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/geoip"
	"gatehouse/services/geoip/geoiptest"
)

// TestSessionDetailsPage: each device has a page with its full user agent, where and when it
// signed in (with the approximate place when a GeoIP database is configured), how, and its own
// events; another person's device, or an unknown id, is not found.
func TestSessionDetailsPage(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		places, err := geoip.Open(geoiptest.WriteCity(t, "GeoLite2-City"))
		if err != nil {
			t.Fatal(err)
		}
		defer places.Close()
		ts := newTestServerWithDeps(t, db, nil, func(d *handlers.Deps, _ *auth.Deps) { d.Locate = places.Locate }, trustLoopback)
		ts.createUser(t, "ann@example.com")
		ts.createUser(t, "bob@example.com")
		laptop := ts.browser(t, firefoxMac).at("192.0.2.44")
		laptop.pageSignIn("ann@example.com")
		phone := ts.browser(t, chromeAndroid).at("198.51.100.9")
		phone.pageSignIn("ann@example.com")
		bob := ts.newClient(t)
		bob.pageSignIn("bob@example.com")
		phoneSID, bobSID := ts.sessionOf(t, phone), ts.sessionOf(t, bob)

		doc := expectPage(t, laptop.get("/devices/"+phoneSID), http.StatusOK, ts.deviceName(t, phoneSID))
		facts := factsOf(doc)
		for _, want := range []string{chromeAndroid, "198.51.100.9 · Iceland", "Signed in with Password", "Status Signed in"} {
			if !strings.Contains(facts, want) {
				t.Errorf("the phone's page does not show %q: %q", want, facts)
			}
		}
		if doc.Find(`form[action="/devices/`+phoneSID+`/signout"] button`).Length() != 1 {
			t.Error("no sign-out button for another device")
		}
		if activity := text(doc.Find(`ul.events`)); !strings.Contains(activity, "New sign-in") {
			t.Errorf("the phone's own activity %q does not show its sign-in", activity)
		}

		own := expectPage(t, laptop.get("/devices/"+ts.sessionOf(t, laptop)), http.StatusOK, ts.deviceName(t, ts.sessionOf(t, laptop)))
		if facts := factsOf(own); !strings.Contains(facts, "192.0.2.44 · Lisbon, Portugal") || !strings.Contains(facts, "this is the device you are using") {
			t.Errorf("this device's page: %q", facts)
		}
		if own.Find(`form[action$="/signout"] button.danger-outline`).Length() != 0 {
			t.Error("this device's page offers to sign itself out as another device")
		}

		for _, sid := range []string{bobSID, "AAAAAAAAAAAAAAAAAAAAAA", "not-an-id", "%00", strings.Repeat("x", 300)} {
			if res := laptop.get("/devices/" + sid); res.StatusCode != http.StatusNotFound {
				t.Errorf("GET /devices/%.30s: %d, want 404", sid, res.StatusCode)
			}
		}

		// A signed-out device keeps its page, saying when it was signed out.
		expectRedirect(t, laptop.page("/devices", "/devices/"+phoneSID+"/signout", nil), "/devices?done=signed-out")
		gone := expectPage(t, laptop.get("/devices/"+phoneSID), http.StatusOK, ts.deviceName(t, phoneSID))
		if facts := factsOf(gone); !strings.Contains(facts, "Status Signed out") {
			t.Errorf("a signed-out device's page: %q", facts)
		}
	})
}

// TestActivityPages: the full security history, fifty events a page, newest first, with stable
// links to older pages; a bad cursor is a clear 400.
func TestActivityPages(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		ts := h.ts
		ann := ts.queryString(t, "SELECT id FROM users WHERE email = ?", "ann@example.com")
		before := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE user_id = ?", ann)
		start := time.Now().Add(-time.Hour)
		for i := range 110 {
			e := &models.SecurityEvent{UserID: ann, Kind: models.EventSignInFailed, IP: fmt.Sprintf("203.0.113.%d", i), CreatedAt: start.Add(time.Duration(i) * time.Second)}
			if err := db.Store.RecordEvent(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
		total := int(before) + 110
		h.use(t)

		var seen []string
		path := "/account/activity"
		for pageNo := 1; path != ""; pageNo++ {
			doc := expectPage(t, h.laptop.get(path), http.StatusOK, "Security activity")
			items := doc.Find(`ul[aria-label="Security activity"] > li`)
			if want := min(50, total-len(seen)); items.Length() != want {
				t.Fatalf("page %d: %d events, want %d", pageNo, items.Length(), want)
			}
			items.Each(func(_ int, li *goquery.Selection) { seen = append(seen, strings.Join(strings.Fields(li.Text()), " ")) })
			if pageNo > 1 && doc.Find(`a[href="/account/activity"]`).Length() != 1 {
				t.Errorf("page %d has no link to the newest", pageNo)
			}
			path, _ = doc.Find(`nav.pager a`).FilterFunction(func(_ int, a *goquery.Selection) bool { return a.Text() == "Older activity" }).Attr("href")
		}
		if len(seen) != total {
			t.Fatalf("%d events over all pages, want %d", len(seen), total)
		}
		if !strings.Contains(seen[0], "203.0.113.109") || !strings.Contains(seen[1], "203.0.113.108") {
			t.Errorf("not newest first: %q, %q", seen[0], seen[1])
		}

		for _, bad := range []string{"abc", "-1", "0", "1e9", "99999999999999999999"} {
			if res := h.laptop.get("/account/activity?before=" + bad); res.StatusCode != http.StatusBadRequest {
				t.Errorf("before=%s: %d, want 400", bad, res.StatusCode)
			}
		}
	})
}

// factsOf reads a page's facts list as "term value; term value", spaces normalised.
func factsOf(doc *goquery.Document) string {
	var parts []string
	doc.Find("dl.facts dt").Each(func(_ int, dt *goquery.Selection) {
		parts = append(parts, strings.Join(strings.Fields(dt.Text()+" "+dt.Next().Text()), " "))
	})
	return strings.Join(parts, "; ")
}
