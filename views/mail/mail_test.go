package mail_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"gatehouse/services/mail"
	mailviews "gatehouse/views/mail"
)

var at = time.Date(2026, 3, 2, 14, 5, 9, 0, time.UTC)

const (
	base = "https://gatehouse.example"
	// tricky is a name a person might give a device: markup, an ampersand, quotes, a line break.
	tricky = `Ann's <script>alert("x")</script> & "laptop"` + "\nIP address: 203.0.113.66"
)

// sample is one message of each kind, with the links it must carry.
var samples = []struct {
	email mailviews.Email
	links []string
	shows []string // text each body shows
}{
	{mailviews.PasswordReset{Email: "ann@example.com", Link: base + "/password/reset?token=abc&x=1", ValidFor: 30 * time.Minute},
		[]string{base + "/password/reset?token=abc&x=1"}, []string{"ann@example.com", "30 minutes", "signs out every device"}},
	{mailviews.PasswordChanged{Email: "ann@example.com", At: at, ResetLink: base + "/password/forgot"},
		[]string{base + "/password/forgot"}, []string{"ann@example.com", "2 Mar 2026, 14:05:09 UTC"}},
	{mailviews.VerifyEmail{Email: "ann@example.com", Link: base + "/verify-email?token=abc", ValidFor: 48 * time.Hour},
		[]string{base + "/verify-email?token=abc"}, []string{"ann@example.com", "2 days"}},
	{mailviews.ConfirmEmailChange{NewEmail: "new@example.com", Link: base + "/account/email/confirm?token=abc", ValidFor: 90 * time.Minute},
		[]string{base + "/account/email/confirm?token=abc"}, []string{"new@example.com", "1 hour 30 minutes"}},
	{mailviews.EmailChanged{OldEmail: "old@example.com", NewEmail: "new@example.com", At: at, UndoLink: base + "/account/email/undo?token=abc", UndoValidFor: 7 * 24 * time.Hour},
		[]string{base + "/account/email/undo?token=abc"}, []string{"old@example.com", "new@example.com", "7 days", "sign out every device"}},
	{mailviews.NewSignIn{Email: "ann@example.com", Device: tricky, Browser: "Firefox 128", OS: "", IP: "192.0.2.1", Place: "Lisbon, Portugal", At: at,
		DevicesLink: base + "/devices", SettingsLink: base + "/account"},
		[]string{base + "/devices", base + "/account"}, []string{"Firefox 128", "unknown", "192.0.2.1", "Approximate place", "Lisbon, Portugal", "2 Mar 2026, 14:05:09 UTC", "turn these notices off"}},
	{mailviews.TokenReplayed{Email: "ann@example.com", Device: tricky, IP: "198.51.100.7", At: at, DevicesLink: base + "/devices"},
		[]string{base + "/devices"}, []string{"198.51.100.7", "signed out"}},
	{mailviews.RecoveryCodeUsed{Email: "ann@example.com", Device: "Phone", IP: "192.0.2.1", At: at, Remaining: 1, SecurityLink: base + "/account/security"},
		[]string{base + "/account/security"}, []string{"Phone", "1 recovery code left"}},
	{mailviews.SignInMethodsChanged{Email: "ann@example.com", Change: `A passkey (` + tricky + `) was added.`, IP: "192.0.2.1", At: at, SecurityLink: base + "/account/security"},
		[]string{base + "/account/security"}, []string{"was added", "192.0.2.1", "2 Mar 2026, 14:05:09 UTC"}},
}

func TestEveryKindRenders(t *testing.T) {
	var kinds []string
	for _, s := range samples {
		t.Run(s.email.Kind(), func(t *testing.T) {
			r, err := mailviews.Render(t.Context(), s.email)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			kinds = append(kinds, r.Kind)
			if r.Kind != s.email.Kind() || r.Subject != s.email.Subject() || !strings.Contains(r.Subject, "Gatehouse") {
				t.Errorf("kind %q, subject %q", r.Kind, r.Subject)
			}
			// What services/mail will send: the subject and bodies pass its checks.
			m := mail.Message{Kind: r.Kind, To: mail.Address{Address: "ann@example.com"}, Subject: r.Subject, Text: r.Text, HTML: r.HTML}
			if err := m.Validate(); err != nil {
				t.Errorf("the rendered message does not validate: %v", err)
			}
			checkText(t, r.Text, s.links, s.shows)
			checkHTML(t, r.HTML, r.Subject, s.links, s.shows)
		})
	}
	slices.Sort(kinds)
	all := slices.Clone(mailviews.Kinds)
	slices.Sort(all)
	if !slices.Equal(kinds, all) {
		t.Errorf("rendered kinds %v, want every kind %v", kinds, all)
	}
}

func checkText(t *testing.T, text string, links, shows []string) {
	t.Helper()
	if !strings.HasSuffix(text, "\n") || strings.Contains(text, "\n\n\n") || strings.HasPrefix(text, "\n") {
		t.Errorf("text is not paragraphs separated by one blank line:\n%s", text)
	}
	for line := range strings.SplitSeq(text, "\n") {
		if line != strings.TrimSpace(line) {
			t.Errorf("line %q has outer spaces", line)
		}
		if strings.HasPrefix(line, "IP address: 203.0.113.66") {
			t.Errorf("a value started a line of its own: %q", line)
		}
	}
	// Links stand on a line of their own or end one, exactly as given (no &amp;).
	for _, link := range links {
		if !strings.Contains(text, link+"\n") {
			t.Errorf("text lacks the link %s at a line end:\n%s", link, text)
		}
	}
	for _, s := range shows {
		if !strings.Contains(text, s) {
			t.Errorf("text lacks %q:\n%s", s, text)
		}
	}
	if strings.Contains(text, "&amp;") || strings.Contains(text, "&lt;") || strings.Contains(text, "&#39;") || strings.Contains(text, "<p>") {
		t.Errorf("text holds HTML:\n%s", text)
	}
	if strings.Contains(text, "Ann") && !strings.Contains(text, `Ann's <script>alert("x")</script> & "laptop" IP address: 203.0.113.66`) {
		t.Errorf("the device name is not shown as it is (its line break as a space):\n%s", text)
	}
}

func checkHTML(t *testing.T, html, subject string, links, shows []string) {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(html))
	if err != nil {
		t.Fatalf("parse HTML: %v", err)
	}
	if doc.Find("title").Text() == "" || doc.Find("h1").Length() != 1 || doc.Find("html").AttrOr("lang", "") != "en" {
		t.Errorf("no title, one h1 and lang: %s", html)
	}
	// No tracking and nothing fetched: no images, scripts, stylesheets, frames or forms.
	if n := doc.Find("img, script, link, iframe, object, embed, form, video, audio, [src], [srcset]").Length(); n != 0 {
		t.Errorf("%d elements that fetch or run something", n)
	}
	if strings.Contains(html, "url(") || strings.Contains(html, "@import") {
		t.Error("styles fetch something")
	}
	var hrefs []string
	doc.Find("a").Each(func(_ int, a *goquery.Selection) { hrefs = append(hrefs, a.AttrOr("href", "")) })
	for _, href := range hrefs {
		if !slices.Contains(links, href) {
			t.Errorf("a link to %q, want only %v", href, links)
		}
	}
	for _, link := range links {
		if !slices.Contains(hrefs, link) {
			t.Errorf("no link to %s", link)
		}
	}
	page := doc.Text()
	for _, s := range shows {
		if !strings.Contains(page, s) {
			t.Errorf("HTML lacks %q", s)
		}
	}
	if strings.Contains(page, "Ann") && !strings.Contains(page, `Ann's <script>alert("x")</script> & "laptop"`) {
		t.Errorf("the device name is not shown as text")
	}
}

func TestLinksAreSanitised(t *testing.T) {
	r, err := mailviews.Render(t.Context(), mailviews.PasswordReset{Email: "ann@example.com", Link: "javascript:alert(1)", ValidFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.HTML, `href="javascript:`) {
		t.Errorf("a javascript: link survived in the HTML: %s", r.HTML)
	}
}
