package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/models"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
)

// rowsOf counts, table by table, the rows that belong to the account with the given id and email.
func rowsOf(t *testing.T, db *testdb.DB, id, email string) map[string]int64 {
	t.Helper()
	q := func(sql string, arg string) int64 {
		var n int64
		if err := db.Store.DB().Raw(sql, arg).Scan(&n).Error; err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	return map[string]int64{
		"users":           q("SELECT COUNT(*) FROM users WHERE id = ?", id),
		"device_sessions": q("SELECT COUNT(*) FROM device_sessions WHERE user_id = ?", id),
		"refresh_tokens":  q("SELECT COUNT(*) FROM refresh_tokens WHERE session_id IN (SELECT id FROM device_sessions WHERE user_id = ?)", id),
		"security_events": q("SELECT COUNT(*) FROM security_events WHERE user_id = ?", id),
		"link_tokens":     q("SELECT COUNT(*) FROM link_tokens WHERE user_id = ?", id),
		"known_devices":   q("SELECT COUNT(*) FROM known_devices WHERE user_id = ?", id),
		"mail_outbox":     q("SELECT COUNT(*) FROM mail_outbox WHERE recipient = ? AND sent_at IS NULL AND failed_at IS NULL", email),
		"factors":         q("SELECT COUNT(*) FROM factors WHERE user_id = ?", id),
		"recovery_codes":  q("SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?", id),
	}
}

// accountTOTP gives a user an authenticator app through the service, as if added on the security
// page of session sid, and returns its secret and the recovery codes that came with it.
func accountTOTP(t *testing.T, ts *testServer, userID, email, sid string) (string, []string) {
	t.Helper()
	ctx := context.Background()
	p := &auth.Principal{UserID: userID, Email: email, SessionID: sid, AuthenticatedAt: ts.clock.Now()}
	enrolment, err := ts.svc.BeginTOTP(ctx, p)
	if err != nil {
		t.Fatalf("begin TOTP: %v", err)
	}
	code, err := auth.TOTPCode(enrolment.Secret, ts.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	codes, err := ts.svc.ConfirmTOTP(ctx, p, enrolment.FactorID, "Ann's phone", code, "192.0.2.1")
	if err != nil || len(codes) != auth.RecoveryCodeCount {
		t.Fatalf("confirm TOTP: %d codes, %v", len(codes), err)
	}
	return enrolment.Secret, codes
}

func TestDeleteAccount(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		ts := h.ts
		ts.createUser(t, "bob@example.com")
		bob := ts.newClient(t)
		bob.pageSignIn("bob@example.com")
		app := ts.newClient(t)
		access := app.apiSignIn("ann@example.com")
		refresh := app.cookieValue("gh_refresh")
		if refresh == "" {
			t.Fatal("the app has no refresh cookie")
		}
		ann := ts.queryString(t, "SELECT id FROM users WHERE email = ?", "ann@example.com")
		bobID := ts.queryString(t, "SELECT id FROM users WHERE email = ?", "bob@example.com")
		if err := ts.svc.SendVerification(context.Background(), ann); err != nil { // a link token
			t.Fatal(err)
		}
		now := time.Now()
		if err := db.Store.EnqueueMail(context.Background(), &models.OutboxMessage{Kind: "test", Recipient: "ann@example.com",
			Subject: "pending", TextBody: "x", HTMLBody: "x", MessageID: "<pending@test>", CreatedAt: now, NextAttemptAt: now}); err != nil {
			t.Fatal(err)
		}
		accountTOTP(t, ts, ann, "ann@example.com", h.laptopSID)
		before := rowsOf(t, db, ann, "ann@example.com")
		for _, table := range []string{"users", "device_sessions", "refresh_tokens", "security_events", "link_tokens", "known_devices", "mail_outbox", "factors", "recovery_codes"} {
			if before[table] == 0 {
				t.Fatalf("ann has no %s rows before the deletion: the test shows nothing", table)
			}
		}
		bobBefore := rowsOf(t, db, bobID, "bob@example.com")

		t.Run("without a CSRF token: 403, nothing deleted", func(t *testing.T) {
			h.use(t)
			res := h.laptop.postRaw("/account/delete", url.Values{"current_password": {testPassword}}, nil)
			if res.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", res.StatusCode)
			}
			if n := rowsOf(t, db, ann, "ann@example.com")["users"]; n != 1 {
				t.Fatal("the account was deleted without a CSRF token")
			}
		})

		t.Run("a wrong password: 400, nothing deleted, the attempt counted", func(t *testing.T) {
			h.use(t)
			h.laptop.get("/account")
			failed := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'password_check_failed'")
			res := h.laptop.postForm("/account/delete", url.Values{"current_password": {"not my password"}})
			doc := expectPage(t, res, http.StatusBadRequest, "Account")
			if msg := fieldError(t, doc.Selection, "#field-delete-current_password"); msg != "That is not your current password." {
				t.Errorf("field error %q", msg)
			}
			if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'password_check_failed'"); n != failed+1 {
				t.Errorf("%d failed password checks recorded, want %d", n, failed+1)
			}
			after := rowsOf(t, db, ann, "ann@example.com")
			for table, n := range before {
				if table != "security_events" && after[table] != n {
					t.Errorf("%s: %d rows, want %d", table, after[table], n)
				}
			}
			expectSignedIn(t, h.phone)
		})

		t.Run("no password: 400, nothing deleted, no attempt counted", func(t *testing.T) {
			h.use(t)
			h.laptop.get("/account")
			failed := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'password_check_failed'")
			doc := expectPage(t, h.laptop.postForm("/account/delete", url.Values{"current_password": {""}}), http.StatusBadRequest, "Account")
			if msg := fieldError(t, doc.Selection, "#field-delete-current_password"); msg != "Enter your current password." {
				t.Errorf("field error %q", msg)
			}
			if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'password_check_failed'"); n != failed {
				t.Errorf("%d failed password checks recorded, want %d: an empty field is not a guess", n, failed)
			}
			expectSignedIn(t, h.phone)
		})

		t.Run("the right password: everything of ann's is gone", func(t *testing.T) {
			h.use(t)
			h.laptop.get("/account")
			res := h.laptop.postForm("/account/delete", url.Values{"current_password": {testPassword}})
			expectRedirect(t, res, "/login?done=deleted")
			for _, name := range []string{"gh_access", "gh_refresh"} {
				if c := res.cookie(name); c == nil || c.Value != "" || (c.MaxAge >= 0 && !c.Expires.Before(time.Now())) {
					t.Errorf("cookie %s not cleared: %+v", name, c)
				}
			}
			for table, n := range rowsOf(t, db, ann, "ann@example.com") {
				if n != 0 {
					t.Errorf("%s: %d rows of ann's left", table, n)
				}
			}
			if got := rowsOf(t, db, bobID, "bob@example.com"); !equalCounts(got, bobBefore) {
				t.Errorf("bob's rows changed: %v, want %v", got, bobBefore)
			}
			page := expectPage(t, h.laptop.get("/login?done=deleted"), http.StatusOK, "Sign in")
			if !strings.Contains(page.Text(), "Your account was deleted") {
				t.Error("the sign-in page does not say the account was deleted")
			}
			expectSignedOut(t, h.phone)
			if res := app.do(http.MethodGet, "/api/me", nil, bearer(access)); res.StatusCode != http.StatusUnauthorized {
				t.Errorf("the app's bearer token: %d, want 401", res.StatusCode)
			}
			app.setCookie("gh_refresh", refresh)
			if res := app.do(http.MethodPost, "/auth/refresh", nil, nil); res.StatusCode != http.StatusUnauthorized {
				t.Errorf("the app's refresh: %d, want 401", res.StatusCode)
			}
			res = app.postJSON("/auth/login", map[string]string{"email": "ann@example.com", "password": testPassword}, nil)
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("sign-in with the old password: %d, want 401", res.StatusCode)
			}
			expectSignedIn(t, bob)
		})
	})
}

func equalCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestExportAccount(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		ts := h.ts
		ts.createUser(t, "bob@example.com")
		bob := ts.newClient(t)
		bob.pageSignIn("bob@example.com")
		h.use(t)
		ann := ts.queryString(t, "SELECT id FROM users WHERE email = ?", "ann@example.com")
		secret, recoveryCodes := accountTOTP(t, ts, ann, "ann@example.com", h.laptopSID)

		res := h.laptop.get("/account/export")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d; body %.300s", res.StatusCode, res.body)
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q", ct)
		}
		if cd := res.Header.Get("Content-Disposition"); cd != `attachment; filename="gatehouse-export.json"` {
			t.Errorf("Content-Disposition %q", cd)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q", cc)
		}
		var got struct {
			Account        map[string]any   `json:"account"`
			DeviceSessions []map[string]any `json:"device_sessions"`
			SecurityEvents []map[string]any `json:"security_events"`
			SecondFactors  []map[string]any `json:"second_factors"`
			RecoveryLeft   int              `json:"recovery_codes_left"`
		}
		if err := json.Unmarshal(res.body, &got); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
		if len(got.SecondFactors) != 1 || got.SecondFactors[0]["name"] != "Ann's phone" || got.SecondFactors[0]["kind"] != "totp" || got.RecoveryLeft != auth.RecoveryCodeCount {
			t.Errorf("second factors %v, %d recovery codes left; want Ann's phone (totp) and %d", got.SecondFactors, got.RecoveryLeft, auth.RecoveryCodeCount)
		}
		for _, k := range []string{"id", "email", "email_verified", "display_name", "created_at", "sign_in_notices"} {
			if _, ok := got.Account[k]; !ok {
				t.Errorf("account has no %q", k)
			}
		}
		if got.Account["id"] != ann || got.Account["email"] != "ann@example.com" {
			t.Errorf("account %v, want ann's", got.Account)
		}
		if len(got.DeviceSessions) != 2 {
			t.Fatalf("%d device sessions, want ann's 2", len(got.DeviceSessions))
		}
		current := 0
		for _, d := range got.DeviceSessions {
			for _, k := range []string{"id", "device_name", "user_agent", "created_ip", "last_ip", "created_at", "last_used_at", "expires_at", "revoked_at", "current"} {
				if _, ok := d[k]; !ok {
					t.Errorf("device session has no %q", k)
				}
			}
			if d["current"] == true {
				current++
				if d["id"] != h.laptopSID {
					t.Errorf("current session %v, want the laptop's %s", d["id"], h.laptopSID)
				}
			}
		}
		if current != 1 {
			t.Errorf("%d current sessions, want 1", current)
		}
		if len(got.SecurityEvents) == 0 {
			t.Fatal("no security events")
		}
		for _, e := range got.SecurityEvents {
			for _, k := range []string{"kind", "device_name", "ip", "at"} {
				if _, ok := e[k]; !ok {
					t.Errorf("security event has no %q", k)
				}
			}
		}

		body := string(res.body)
		if strings.Contains(strings.ToLower(body), "hash") {
			t.Error("the export mentions a hash")
		}
		secrets := map[string]string{
			"password hash":        ts.queryString(t, "SELECT password_hash FROM users WHERE id = ?", ann),
			"laptop refresh token": h.laptop.cookieValue("gh_refresh"),
			"laptop access token":  h.laptop.cookieValue("gh_access"),
			"phone refresh token":  h.phone.cookieValue("gh_refresh"),
			"device cookie":        h.laptop.cookieValue("gh_device"),
			"TOTP secret":          secret,
			"a recovery code":      recoveryCodes[0],
			"csrf cookie":          h.laptop.csrf,
		}
		for what, v := range secrets {
			if v == "" {
				t.Errorf("test setup: no %s", what)
				continue
			}
			if strings.Contains(body, v) {
				t.Errorf("the export holds the %s", what)
			}
		}
		for _, other := range []string{"bob@example.com", ts.queryString(t, "SELECT id FROM users WHERE email = ?", "bob@example.com"), ts.sessionOf(t, bob)} {
			if strings.Contains(body, other) {
				t.Errorf("the export holds bob's %q", other)
			}
		}

		signedOut := ts.newClient(t)
		expectRedirect(t, signedOut.get("/account/export"), "/login?next=%2Faccount%2Fexport")

		doc := expectPage(t, h.laptop.get("/account"), http.StatusOK, "Account")
		if doc.Find(`a[href="/account/export"]`).Length() != 1 {
			t.Error("the account page has no link to the export")
		}
	})
}
