package pages_test

import (
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"gatehouse/views/pages"
)

// The error summary: after a refused submit, the form that was refused starts with a box headed
// "There is a problem" that takes the focus and links to each field with its error.

// line is one line of an error summary as a person reads it: the field's label and its error.
type line struct{ label, message string }

// wantErrorSummary checks the error summary of a refused form: the one on the page, at the top of
// form, the one element that takes the focus on arrival, an alert headed "There is a problem", and
// one link per error, in the form's order, each to the field with that label, saying its error,
// which is also shown next to the field.
func wantErrorSummary(t *testing.T, doc *goquery.Document, form *goquery.Selection, want ...line) {
	t.Helper()
	summaries := doc.Find(".error-summary")
	if summaries.Length() != 1 {
		t.Fatalf("%d error summaries on the page, want 1", summaries.Length())
	}
	summary := summaries.First()
	if form.Length() != 1 || !summary.Closest("form").IsSelection(form) {
		t.Fatalf("the error summary is not in the refused form %q", form.AttrOr("action", ""))
	}
	if first := form.Children().Not(`input[type="hidden"]`).First(); !first.IsSelection(summary) {
		t.Errorf("the form starts with <%s>, want the error summary", goquery.NodeName(first))
	}
	if got := summary.AttrOr("tabindex", ""); got != "-1" {
		t.Errorf("summary tabindex = %q, want -1 (focusable, not in the tab order)", got)
	}
	if _, ok := summary.Attr("autofocus"); !ok {
		t.Error("the summary does not take the focus (no autofocus)")
	}
	if focus := doc.Find("[autofocus]"); focus.Length() != 1 {
		t.Errorf("%d elements take the focus, want only the summary", focus.Length())
	}
	alert := summary.Find(`[role="alert"]`)
	if alert.Length() != 1 || text(alert.Find("h2")) != "There is a problem" {
		t.Errorf("summary alert %q, want one role=alert headed \"There is a problem\"", text(alert))
	}
	if n := doc.Find(`[role="alert"]`).Length(); n != 1 {
		t.Errorf("%d alerts on the page, want the summary's only (the field errors are not announced twice)", n)
	}

	links := summary.Find("a")
	if links.Length() != len(want) {
		t.Fatalf("%d links in the summary (%q), want %d", links.Length(), text(links), len(want))
	}
	inputs := form.Find(`input:not([type="hidden"])`)
	last := -1
	links.Each(func(i int, a *goquery.Selection) {
		href := a.AttrOr("href", "")
		id, ok := strings.CutPrefix(href, "#")
		target := doc.Find(`[id="` + id + `"]`)
		if !ok || target.Length() != 1 || goquery.NodeName(target) != "input" {
			t.Errorf("link %d goes to %q, which is not one input of the page", i, href)
			return
		}
		if got := text(doc.Find(`label[for="` + id + `"]`)); got != want[i].label {
			t.Errorf("link %d goes to the field %q, want %q", i, got, want[i].label)
		}
		if got, w := text(a), want[i].label+": "+want[i].message; got != w {
			t.Errorf("link %d says %q, want %q", i, got, w)
		}
		wantFieldError(t, form, want[i].label, want[i].message)
		at := inputs.IndexOfSelection(target)
		if at < 0 {
			t.Errorf("link %d goes to a field outside the refused form", i)
		}
		if at <= last {
			t.Errorf("link %d (%q) is out of the form's order", i, want[i].label)
		}
		last = at
	})
}

// wantNoErrorSummary checks that a page without errors has no summary and moves no focus.
func wantNoErrorSummary(t *testing.T, doc *goquery.Document) {
	t.Helper()
	if n := doc.Find(".error-summary").Length(); n != 0 {
		t.Errorf("%d error summaries without an error", n)
	}
	if n := doc.Find("[autofocus]").Length(); n != 0 {
		t.Errorf("%d elements take the focus without an error", n)
	}
}

func formOf(t *testing.T, doc *goquery.Document, action string) *goquery.Selection {
	t.Helper()
	form := doc.Find(`form[action="` + action + `"]`)
	if form.Length() != 1 {
		t.Fatalf("%d forms post to %s, want 1", form.Length(), action)
	}
	return form
}

func TestNoErrorSummaryWithoutErrors(t *testing.T) {
	for name, page := range map[string]templ.Component{
		"sign-up":         pages.Signup(pages.SignupPage{Frame: signedOut("Create your account")}),
		"account":         pages.Account(pages.AccountPage{Frame: signedIn("Account"), Email: "ada@example.com", DisplayName: "Ada"}),
		"forgot password": pages.ForgotPassword(pages.ForgotPasswordPage{Frame: signedOut("Reset your password")}),
		"reset password":  pages.ResetPassword(pages.ResetPasswordPage{Frame: signedOut("Choose a new password"), Token: "t", Usable: true}),
		"security":        pages.Security(securityPage()),
		"enrol":           pages.TOTPEnrol(enrolPage()),
		"second factor":   pages.SecondFactor(secondFactorPage()),
		"confirm":         pages.ConfirmPassword(pages.ConfirmPasswordPage{Frame: signedIn("Confirm it's you"), Action: "/account/security", Purpose: "x", Codes: true}),
		"sign-in, failed": pages.Login(pages.LoginPage{Frame: signedOut("Sign in"), Error: "The email or password is not right."}),
	} {
		t.Run(name, func(t *testing.T) { wantNoErrorSummary(t, render(t, page)) })
	}
}

// An empty sign-up form: every required field says what is missing, and the summary lists them
// in the form's order (the display name is optional and fine).
func TestSignupErrorSummary(t *testing.T) {
	doc := render(t, pages.Signup(pages.SignupPage{
		Frame: signedOut("Create your account"),
		Errors: map[string]string{
			"password_confirm": "Type the password again.",
			"email":            "Enter your email address.",
			"password":         "Choose a password of at least 10 characters.",
		},
	}))
	wantErrorSummary(t, doc, formOf(t, doc, "/signup"),
		line{"Email", "Enter your email address."},
		line{"Password", "Choose a password of at least 10 characters."},
		line{"Confirm password", "Type the password again."})
	wantNoFieldError(t, field(t, doc.Selection, "Display name (optional)").Parent(), "Display name (optional)")

	doc = render(t, pages.Signup(pages.SignupPage{Frame: signedOut("Create your account"), Errors: map[string]string{"display_name": "Use at most 64 characters."}}))
	wantErrorSummary(t, doc, formOf(t, doc, "/signup"), line{"Display name (optional)", "Use at most 64 characters."})
}

// The sign-in page keeps its one generic alert, which names no field: it must not tell which of
// the two was wrong.
func TestLoginHasNoErrorSummary(t *testing.T) {
	doc := render(t, pages.Login(pages.LoginPage{Frame: signedOut("Sign in"), Email: "ada@example.com", Error: "The email or password is not right."}))
	if got := text(doc.Find(`[role="alert"]`)); got != "The email or password is not right." {
		t.Errorf("alert %q", got)
	}
	if n := doc.Find(`.error-summary, a[href^="#field-"], [aria-invalid]`).Length(); n != 0 {
		t.Errorf("%d elements single out a field", n)
	}
}

// Each of the account page's forms has its own summary: the one that was refused shows it, at its
// own top; the others show none.
func TestAccountErrorSummaryBelongsToTheRefusedForm(t *testing.T) {
	for _, c := range []struct {
		action string
		errors map[string]string
		want   []line
	}{
		{"/account/name", map[string]string{"display_name": "Use at most 64 characters."},
			[]line{{"Display name", "Use at most 64 characters."}}},
		{"/account/email", map[string]string{"new_email": "Enter a valid email address, like name@example.com.", "email_current_password": "That is not your current password."},
			[]line{{"New email address", "Enter a valid email address, like name@example.com."}, {"Your password, to confirm it is you", "That is not your current password."}}},
		{"/account/password", map[string]string{"new_password_confirm": "Type the password again.", "current_password": "Enter your current password.", "new_password": "Use at least 10 characters."},
			[]line{{"Current password", "Enter your current password."}, {"New password", "Use at least 10 characters."}, {"Confirm new password", "Type the password again."}}},
		{"/account/delete", map[string]string{"delete_current_password": "That is not your current password."},
			[]line{{"Your password, to delete the account", "That is not your current password."}}},
	} {
		t.Run(c.action, func(t *testing.T) {
			doc := render(t, pages.Account(pages.AccountPage{Frame: signedIn("Account"), Email: "ada@example.com", Errors: c.errors}))
			wantErrorSummary(t, doc, formOf(t, doc, c.action), c.want...)
		})
	}
}

// The display name: a form of its own on the account page, holding the name (empty: none); after
// a refused change it holds what was typed, with the error.
func TestAccountDisplayNameForm(t *testing.T) {
	doc := render(t, pages.Account(pages.AccountPage{Frame: signedIn("Account"), Email: "ada@example.com", DisplayName: "Ada"}))
	wantPostForm(t, doc.Selection, "Save display name", "/account/name")
	name := field(t, formOf(t, doc, "/account/name"), "Display name")
	for attr, want := range map[string]string{"name": "display_name", "value": "Ada", "maxlength": "64", "autocomplete": "name"} {
		if got := name.AttrOr(attr, ""); got != want {
			t.Errorf("display name field %s = %q, want %q", attr, got, want)
		}
	}
	if _, ok := name.Attr("required"); ok {
		t.Error("the display name is required, yet empty means none")
	}

	refused := strings.Repeat("n", 65)
	doc = render(t, pages.Account(pages.AccountPage{Frame: signedIn("Account"), Email: "ada@example.com", DisplayName: "Ada",
		NewDisplayName: refused, Errors: map[string]string{"display_name": "Use at most 64 characters."}}))
	if got := field(t, doc.Selection, "Display name").AttrOr("value", ""); got != refused {
		t.Errorf("display name field holds %q, want the refused input", got)
	}
	wantErrorSummary(t, doc, formOf(t, doc, "/account/name"), line{"Display name", "Use at most 64 characters."})
}

func TestForgotPasswordErrorSummary(t *testing.T) {
	doc := render(t, pages.ForgotPassword(pages.ForgotPasswordPage{Frame: signedOut("Reset your password"), Email: "ada@",
		Errors: map[string]string{"email": "Enter a valid email address, like name@example.com."}}))
	wantErrorSummary(t, doc, formOf(t, doc, "/password/forgot"), line{"Email", "Enter a valid email address, like name@example.com."})
}

func TestResetPasswordErrorSummary(t *testing.T) {
	doc := render(t, pages.ResetPassword(pages.ResetPasswordPage{Frame: signedOut("Choose a new password"), Token: "t", Usable: true,
		Errors: map[string]string{"new_password_confirm": "The passwords do not match.", "new_password": "Use at least 10 characters."}}))
	wantErrorSummary(t, doc, formOf(t, doc, "/password/reset"),
		line{"New password", "Use at least 10 characters."}, line{"New password again", "The passwords do not match."})
}

// A refused factor rename: the summary is at the top of that factor's rename form, inside its
// open disclosure.
func TestSecurityRenameErrorSummary(t *testing.T) {
	page := securityPage()
	page.Factors[1].RenameError = "Use at most 64 characters."
	page.Factors[1].RenameValue = strings.Repeat("k", 65)
	doc := render(t, pages.Security(page))
	form := factorRows(doc).Eq(1).Find(`form[action$="/rename"]`)
	wantErrorSummary(t, doc, form, line{"New name for YubiKey", "Use at most 64 characters."})
}

func TestTOTPEnrolErrorSummary(t *testing.T) {
	page := enrolPage()
	page.Error, page.NameError = "That code is not right.", "Use at most 64 characters."
	doc := render(t, pages.TOTPEnrol(page))
	wantErrorSummary(t, doc, formOf(t, doc, "/account/security/totp/confirm"),
		line{"Name for this app", "Use at most 64 characters."}, line{"6-digit code from the app", "That code is not right."})
}

func TestSecondFactorErrorSummary(t *testing.T) {
	page := secondFactorPage()
	page.Error = "That code is not right. Try the newest code your app shows, or a recovery code."
	doc := render(t, pages.SecondFactor(page))
	wantErrorSummary(t, doc, formOf(t, doc, "/login/second-factor"), line{"Code from your app, or a recovery code", page.Error})
}

// The confirm prompt has a password form and a code form posting to one action: the summary goes
// to the one that was refused.
func TestConfirmPasswordErrorSummary(t *testing.T) {
	page := confirmPage()
	page.Codes, page.Error = true, "That is not your password."
	doc := render(t, pages.ConfirmPassword(page))
	wantErrorSummary(t, doc, button(doc.Selection, "Confirm").Closest("form"), line{"Password", "That is not your password."})

	page = confirmPage()
	page.Codes, page.CodeError = true, "That code is not right."
	doc = render(t, pages.ConfirmPassword(page))
	wantErrorSummary(t, doc, button(doc.Selection, "Confirm with the code").Closest("form"),
		line{"Code from your authenticator app, or a recovery code", "That code is not right."})
}
