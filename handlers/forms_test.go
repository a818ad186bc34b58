package handlers_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"gatehouse/handlers"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/revocation"
)

// Forms that report every problem at once, with an error summary at the top of the refused form,
// and the display name the account page edits.

// summaryOf is what the error summary of the refused form (the form posting to action) lists: its
// links as "#id message", in order. It fails the test unless the page has exactly that one summary.
func summaryOf(action string) func(t *testing.T, _ *stage, _ *client, res *response) []string {
	return func(t *testing.T, _ *stage, _ *client, res *response) []string {
		t.Helper()
		doc := res.Doc(t)
		summary := doc.Find(".error-summary")
		if summary.Length() != 1 || summary.Closest("form").AttrOr("action", "") != action {
			t.Fatalf("%d error summaries, in the form %q; want one, in the form posting to %s",
				summary.Length(), summary.Closest("form").AttrOr("action", ""), action)
		}
		var lines []string
		summary.Find("a").Each(func(_ int, a *goquery.Selection) {
			lines = append(lines, a.AttrOr("href", "")+" "+strings.TrimSpace(a.Text()))
		})
		return lines
	}
}

// wantSummary checks that the page lists exactly lines in the refused form's summary.
func wantSummary(action string, lines ...string) func(t *testing.T, s *stage, c *client, res *response) {
	return func(t *testing.T, s *stage, c *client, res *response) {
		t.Helper()
		if got := summaryOf(action)(t, s, c, res); strings.Join(got, "\n") != strings.Join(lines, "\n") {
			t.Errorf("the error summary lists\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(lines, "\n"))
		}
	}
}

// An empty sign-up form flags every required field at once (not only the email), the summary
// lists them in the form's order, and nothing is created.
func TestPageSignupReportsEveryProblem(t *testing.T) {
	signupFields := func(errors map[string]string) map[string]string {
		fields := map[string]string{}
		for _, f := range []string{"email", "display_name", "password", "password_confirm"} {
			fields[`input[name="`+f+`"]`] = errors[f]
		}
		return fields
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		newStage(t, db).run(t, []scenario{
			{
				name: "an empty form", as: "stranger", from: "/signup", path: "/signup",
				form:   url.Values{"email": {""}, "display_name": {""}, "password": {""}, "password_confirm": {""}},
				status: 400,
				page: page{heading: "Create your account", fields: signupFields(map[string]string{
					"email":            "Enter your email address.",
					"password":         "Choose a password of at least 10 characters.",
					"password_confirm": "Type the password again.",
				})},
				cookies: map[string]bool{"gh_refresh": false, "gh_access": false}, unchanged: true,
				check: wantSummary("/signup",
					"#field-email Email: Enter your email address.",
					"#field-password Password: Choose a password of at least 10 characters.",
					"#field-password_confirm Confirm password: Type the password again."),
			},
			{
				name: "every field wrong", as: "stranger", from: "/signup", path: "/signup",
				form:   url.Values{"email": {"ann-at-example"}, "display_name": {"Ann\u202e"}, "password": {"short"}, "password_confirm": {"shorter"}},
				status: 400,
				page: page{heading: "Create your account", fields: signupFields(map[string]string{
					"email":            "Enter a valid email address, like name@example.com.",
					"display_name":     "Remove the control and text-direction characters.",
					"password":         "Use at least 10 characters.",
					"password_confirm": "The passwords do not match.",
				}), value: map[string]string{`input[name="email"]`: "ann-at-example", `input[name="display_name"]`: "Ann\u202e"},
					blank: []string{`input[name="password"]`, `input[name="password_confirm"]`}},
				cookies: map[string]bool{"gh_refresh": false}, unchanged: true,
				check: wantSummary("/signup",
					"#field-email Email: Enter a valid email address, like name@example.com.",
					"#field-display_name Display name (optional): Remove the control and text-direction characters.",
					"#field-password Password: Use at least 10 characters.",
					"#field-password_confirm Confirm password: The passwords do not match."),
			},
			{
				name: "a taken address, once the form is fine", as: "stranger", from: "/signup", path: "/signup",
				form:   url.Values{"email": {"ann@example.com"}, "password": {testPassword}, "password_confirm": {testPassword}},
				status: 409, page: page{heading: "Create your account", fields: signupFields(map[string]string{"email": "An account with this email already exists. Sign in instead."})},
				unchanged: true,
				check:     wantSummary("/signup", "#field-email Email: An account with this email already exists. Sign in instead."),
			},
		})
	})
}

// The change-password form reports what it can without the current password all at once, and
// checks no password (nor counts an attempt) while the form is incomplete.
func TestPageChangePasswordReportsEveryProblem(t *testing.T) {
	in := func(name string) string { return `form[action="/account/password"] input[name="` + name + `"]` }
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		newStage(t, db).run(t, []scenario{{
			name: "an empty form", as: "laptop", from: "/account", path: "/account/password",
			form:   url.Values{"current_password": {""}, "new_password": {""}, "new_password_confirm": {""}},
			status: 400,
			page: page{heading: "Account", fields: map[string]string{
				in("current_password"):     "Enter your current password.",
				in("new_password"):         "Choose a password of at least 10 characters.",
				in("new_password_confirm"): "Type the password again.",
			}},
			unchanged: true, signedIn: []string{"phone"},
			check: func(t *testing.T, s *stage, c *client, res *response) {
				wantSummary("/account/password",
					"#field-current_password Current password: Enter your current password.",
					"#field-new_password New password: Choose a password of at least 10 characters.",
					"#field-new_password_confirm Confirm new password: Type the password again.")(t, s, c, res)
				if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'password_check_failed'"); n != 0 {
					t.Errorf("%d failed password checks recorded for an empty form", n)
				}
			},
		}})
	})
}

// The reset form reports both of its problems at once.
func TestPageResetReportsBothProblems(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		newStage(t, db).run(t, []scenario{{
			name: "an empty form", as: "stranger", from: "/password/forgot", path: "/password/reset",
			form:   url.Values{"token": {"ghr_whatever"}, "new_password": {""}, "new_password_confirm": {""}},
			status: 400, unchanged: true,
			page: page{heading: "Choose a new password", fields: map[string]string{
				`input[name="new_password"]`:         "Choose a password of at least 10 characters.",
				`input[name="new_password_confirm"]`: "Type the password again.",
			}},
			check: wantSummary("/password/reset",
				"#field-new_password New password: Choose a password of at least 10 characters.",
				"#field-new_password_confirm New password again: Type the password again."),
		}})
	})
}

// The display name, on the account page: saved (trimmed), cleared with an empty field, or refused
// with the error in the form's summary and nothing changed. It records no security event.
func TestPageDisplayName(t *testing.T) {
	const nameField = `form[action="/account/name"] input[name="display_name"]`
	named := func(name string) string {
		return "SELECT COUNT(*) FROM users WHERE email = 'ann@example.com' AND display_name = '" + name + "'"
	}
	saved := func(name, input string) scenario {
		return scenario{
			name: "saved: " + input, as: "laptop", from: "/account", path: "/account/name",
			form: url.Values{"display_name": {input}}, status: 303, location: "/account?done=name",
			changes: map[string]int64{named(name): +1, "SELECT COUNT(*) FROM security_events": 0},
			landing: &page{heading: "Account", text: map[string]string{`[role="status"]`: "Your display name is saved."},
				value: map[string]string{nameField: name}, count: map[string]int{".error-summary": 0}},
		}
	}
	refused := func(name, input, message string) scenario {
		kept := map[string]string{nameField: input}
		if strings.ContainsRune(input, 0) {
			kept = nil // what was typed comes back, but an HTML parser reads a NUL as U+FFFD
		}
		return scenario{
			name: "refused: " + name, as: "laptop", from: "/account", path: "/account/name",
			form: url.Values{"display_name": {input}}, status: 400, unchanged: true,
			page: page{heading: "Account", fields: map[string]string{nameField: message}, value: kept},
			check: func(t *testing.T, s *stage, c *client, res *response) {
				wantSummary("/account/name", "#field-display_name Display name: "+message)(t, s, c, res)
				if n := s.ts.db.Count(t, named("Ann Lovelace")); n != 1 {
					t.Error("a refused display name changed the stored one")
				}
			},
		}
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		newStage(t, db).run(t, []scenario{
			{name: "the form holds the name", as: "laptop", path: "/account", status: 200,
				page: page{heading: "Account", value: map[string]string{nameField: "Test User"}, fields: map[string]string{nameField: ""}}},
			saved("Ann Lovelace", "  Ann Lovelace "),
			saved("", ""),
			saved("Ann Lovelace", "Ann Lovelace"),
			refused("too long", strings.Repeat("n", 65), "Use at most 64 characters."),
			refused("a NUL", "Ann\x00", "Remove the control and text-direction characters."),
			refused("a right-to-left override", "Ann\u202eecalovoL", "Remove the control and text-direction characters."),
			refused("a line break", "Ann\nLovelace", "Remove the control and text-direction characters."),
			{name: "without a CSRF token", as: "laptop", from: "/account", path: "/account/name",
				form: url.Values{"display_name": {"Pwned"}, "_csrf": {"forged"}}, noCSRF: true, status: 403, unchanged: true,
				check: func(t *testing.T, s *stage, _ *client, _ *response) {
					if n := s.ts.db.Count(t, named("Ann Lovelace")); n != 1 {
						t.Error("a forged form changed the display name")
					}
				}},
			{name: "signed out", as: "stranger", path: "/account/name", form: url.Values{"display_name": {"Pwned"}},
				status: 303, location: "/login", unchanged: true},
		})
	})
}

// cacheInvalidator is the observer the server wires in: every revocation notice invalidates the
// instance's cache.
type cacheInvalidator struct{ cache *revocation.Cache }

func (i cacheInvalidator) RefreshOutcome(string) {}
func (i cacheInvalidator) LoginOutcome(string)   {}
func (i cacheInvalidator) Revoked(userID string, sids []string) {
	i.cache.InvalidateUser(userID)
	for _, sid := range sids {
		i.cache.InvalidateSession(sid)
	}
}

// An app's /api/me answers from the revocation cache, as in production (the PostgreSQL feed, or
// the SQLite watcher): a display name changed on the account page shows there at once.
func TestDisplayNameReachesAPIMe(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		cache := revocation.New(db.Store, time.Minute)
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		if db.Name == "postgres" {
			go cache.ListenPostgres(ctx, db.URL, log)
		} else {
			go cache.WatchSQLite(ctx, db.Store, 5*time.Millisecond, log)
		}
		for deadline := time.Now().Add(10 * time.Second); !cache.Live(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the revocation feed never connected")
			}
		}
		ts := newTestServerWithService(t, db, nil,
			func(_ *handlers.Deps, a *auth.Deps) { a.Observer = cacheInvalidator{cache} },
			func(svc *auth.Service) { svc.SetAccessStates(cache) })
		ts.createUser(t, "ann@example.com")
		app := ts.newClient(t)
		access := app.apiSignIn("ann@example.com")
		me := func() any {
			t.Helper()
			res := app.do(http.MethodGet, "/api/me", nil, bearer(access))
			if res.StatusCode != http.StatusOK {
				t.Fatalf("/api/me: %d %s", res.StatusCode, res.body)
			}
			return res.JSON(t)["display_name"]
		}
		if got := me(); got != "Test User" {
			t.Fatalf("/api/me display_name %v, want Test User", got)
		}
		if cache.Size() == 0 {
			t.Fatal("the cache holds nothing after /api/me: the test would not show it is invalidated")
		}

		browser := ts.newClient(t)
		browser.pageSignIn("ann@example.com")
		for _, name := range []string{"Ann Lovelace", ""} {
			browser.get("/account")
			expectRedirect(t, browser.postForm("/account/name", url.Values{"display_name": {name}}), "/account?done=name")
			if got := me(); got != name {
				t.Errorf("after the change to %q, /api/me answers display_name %v", name, got)
			}
		}
	})
}
