package pages_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"gatehouse/views/pages"
)

func at(d time.Duration) *time.Time {
	t := now.Add(-d)
	return &t
}

func securityPage() pages.SecurityPage {
	return pages.SecurityPage{
		Frame: signedIn("Sign-in security"),
		Now:   now,
		Factors: []pages.FactorRow{
			{ID: "f-app", Kind: "totp", Name: "Rae's phone", AddedAt: now.Add(-3 * 24 * time.Hour), LastUsedAt: at(2 * time.Hour)},
			{ID: "f-key", Kind: "passkey", Name: "YubiKey", AddedAt: now.Add(-time.Hour)},
		},
		RecoveryCodesLeft: 8,
		Errors:            map[string]string{},
	}
}

// factorRows are the rows of "Second factors and passkeys", in order.
func factorRows(doc *goquery.Document) *goquery.Selection {
	return doc.Find(`section[aria-labelledby="factors"] ul > li`)
}

// factFor is what a row's fact list shows for label ("Kind", "Added", "Last used", …).
func factFor(t *testing.T, row *goquery.Selection, label string) string {
	t.Helper()
	dt := row.Find("dt").FilterFunction(func(_ int, s *goquery.Selection) bool { return text(s) == label })
	if dt.Length() != 1 {
		t.Fatalf("%d facts labelled %q, want 1 in %q", dt.Length(), label, text(row))
	}
	return text(dt.Next().Filter("dd"))
}

// disclosure is the <details> whose <summary> is named name; it fails unless there is one.
func disclosure(t *testing.T, in *goquery.Selection, name string) *goquery.Selection {
	t.Helper()
	summaries := in.Find("details > summary").FilterFunction(func(_ int, s *goquery.Selection) bool { return text(s) == name })
	if summaries.Length() != 1 {
		t.Fatalf("%d disclosures named %q, want 1", summaries.Length(), name)
	}
	if goquery.NodeName(summaries.Parent().Children().First()) != "summary" {
		t.Fatalf("%q: the <summary> is not the first child of its <details>", name)
	}
	return summaries.Parent()
}

func isOpen(s *goquery.Selection) bool {
	_, open := s.Attr("open")
	return open
}

func TestSecurityShowsEachFactor(t *testing.T) {
	doc := render(t, pages.Security(securityPage()))

	if got := text(doc.Find("main h1")); got != "Sign-in security" {
		t.Errorf("h1 = %q", got)
	}
	if got := text(doc.Find(`h2#factors`)); got != "Second factors and passkeys" {
		t.Errorf("factors heading = %q", got)
	}
	rows := factorRows(doc)
	if rows.Length() != 2 {
		t.Fatalf("%d factor rows, want 2", rows.Length())
	}
	app, key := rows.Eq(0), rows.Eq(1)
	if got := text(app.Find("h3")); got != "Rae's phone" {
		t.Errorf("first row heading = %q", got)
	}
	for label, want := range map[string]string{"Kind": "Authenticator app", "Added": "3 days ago (7 Mar 2026, 12:00 UTC)", "Last used": "2 hours ago (10 Mar 2026, 10:00 UTC)"} {
		if got := factFor(t, app, label); got != want {
			t.Errorf("app %s = %q, want %q", label, got, want)
		}
	}
	for label, want := range map[string]string{"Kind": "Passkey", "Added": "1 hour ago (10 Mar 2026, 11:00 UTC)", "Last used": "Not used yet"} {
		if got := factFor(t, key, label); got != want {
			t.Errorf("passkey %s = %q, want %q", label, got, want)
		}
	}
	added := app.Find("dd time").First()
	if got := added.AttrOr("datetime", ""); got != "2026-03-07T12:00:00Z" {
		t.Errorf("added datetime = %q, want RFC 3339", got)
	}
	if got := text(doc.Find("p.lead")); !strings.Contains(got, "authenticator app or a passkey") {
		t.Errorf("summary %q does not say what protects the account", got)
	}
}

// Rename and remove sit behind closed <details> disclosures, named for their factor, and post to
// that factor's paths.
func TestSecurityFactorControls(t *testing.T) {
	doc := render(t, pages.Security(securityPage()))
	app := factorRows(doc).Eq(0)

	rename := disclosure(t, app, "Rename Rae's phone")
	remove := disclosure(t, app, "Remove Rae's phone")
	if isOpen(rename) || isOpen(remove) {
		t.Error("a disclosure is open without an error")
	}
	if got := text(rename.Find("summary")); got != "Rename Rae's phone" {
		t.Errorf("rename summary = %q", got)
	}
	if got := text(rename.Find("summary").Children().Filter(".visually-hidden")); got != "Rae's phone" {
		t.Errorf("the summary's visible text is not just \"Rename\": hidden part %q", got)
	}

	wantPostForm(t, rename, "Save name for Rae's phone", "/account/security/factors/f-app/rename")
	name := field(t, rename, "New name for Rae's phone")
	if name.AttrOr("name", "") != "name" || name.AttrOr("value", "") != "Rae's phone" || name.AttrOr("maxlength", "") != "64" {
		t.Errorf("rename field: name=%q value=%q maxlength=%q", name.AttrOr("name", ""), name.AttrOr("value", ""), name.AttrOr("maxlength", ""))
	}
	wantNoFieldError(t, rename, "New name for Rae's phone")

	wantPostForm(t, remove, "Yes, remove Rae's phone", "/account/security/factors/f-app/delete")
	if !button(remove, "Yes, remove Rae's phone").HasClass("danger") {
		t.Error("the remove button is not danger-styled")
	}
	wantPostForm(t, factorRows(doc).Eq(1), "Yes, remove YubiKey", "/account/security/factors/f-key/delete")
	wantPostForm(t, doc.Selection, "Set up an authenticator app", "/account/security/totp")
	wantPostForm(t, doc.Selection, "Make new recovery codes", "/account/security/recovery-codes")
}

// An id becomes one path segment, whatever characters it holds.
func TestSecurityFactorPathsEscapeTheID(t *testing.T) {
	page := securityPage()
	page.Factors = page.Factors[:1]
	page.Factors[0].ID = "a/b?c"
	doc := render(t, pages.Security(page))
	wantPostForm(t, doc.Selection, "Yes, remove Rae's phone", "/account/security/factors/a%2Fb%3Fc/delete")
}

// Removing a factor says what it changes before the button, and the button is described by it;
// removing the only one says that the password alone signs in after it.
func TestSecurityRemoveSaysWhatItMeans(t *testing.T) {
	const lastWarning = "This is your only second factor. Once it is removed, your password alone signs you in, and your recovery codes stop working."

	doc := render(t, pages.Security(securityPage()))
	remove := disclosure(t, factorRows(doc).Eq(0), "Remove Rae's phone")
	if strings.Contains(text(remove), "only second factor") {
		t.Errorf("one of two factors is called the only one: %q", text(remove))
	}
	wantDescribedBy(t, remove, button(remove, "Yes, remove Rae's phone"), "Codes from this app will no longer be accepted. Your other second factors keep working.")

	page := securityPage()
	page.Factors = page.Factors[:1]
	page.Factors[0].Last = true
	doc = render(t, pages.Security(page))
	remove = disclosure(t, factorRows(doc).Eq(0), "Remove Rae's phone")
	wantDescribedBy(t, doc.Selection, button(remove, "Yes, remove Rae's phone"), lastWarning)
	warning := remove.Find(".alert")
	if got := text(warning); got != lastWarning {
		t.Errorf("last-factor warning = %q, want %q", got, lastWarning)
	}
	// The warning comes before the button it is about.
	if warning.Length() != 1 || warning.Next().Find("button").Length() != 1 {
		t.Error("the warning is not right before the remove form")
	}
}

// wantDescribedBy checks that el's aria-describedby names elements in doc whose text is want.
func wantDescribedBy(t *testing.T, doc *goquery.Selection, el *goquery.Selection, want string) {
	t.Helper()
	var said []string
	for _, id := range strings.Fields(el.AttrOr("aria-describedby", "")) {
		target := doc.Find(`[id="` + id + `"]`)
		if target.Length() != 1 {
			t.Errorf("aria-describedby names %q, which is %d elements", id, target.Length())
		}
		said = append(said, text(target))
	}
	if got := strings.Join(said, " "); got != want {
		t.Errorf("described as %q, want %q", got, want)
	}
}

// A refused rename keeps what was typed in view: its disclosure is open, the error is next to the
// field and tied to it, and the form's error summary has the focus (TestSecurityRenameErrorSummary).
func TestSecurityRenameError(t *testing.T) {
	page := securityPage()
	page.Factors[1].RenameError = "Use at most 64 characters."
	page.Factors[1].RenameValue = strings.Repeat("k", 65)
	doc := render(t, pages.Security(page))
	app, key := factorRows(doc).Eq(0), factorRows(doc).Eq(1)

	rename := disclosure(t, key, "Rename YubiKey")
	if !isOpen(rename) {
		t.Error("the refused rename's disclosure is closed")
	}
	if isOpen(disclosure(t, app, "Rename Rae's phone")) {
		t.Error("the other factor's rename is open")
	}
	wantFieldError(t, rename, "New name for YubiKey", "Use at most 64 characters.")
	input := field(t, rename, "New name for YubiKey")
	if got := input.AttrOr("value", ""); got != strings.Repeat("k", 65) {
		t.Errorf("rename field holds %q, want the refused input", got)
	}
	if focus := doc.Find("[autofocus]"); focus.Length() != 1 || !focus.HasClass("error-summary") {
		t.Errorf("%d elements take the focus, want the error summary alone", focus.Length())
	}
}

// Factors with one name (two apps both called "Authenticator app", an app and a passkey both
// called "Rae's phone") still give every control its own accessible name.
func TestSecuritySameNameControlsAreDistinct(t *testing.T) {
	page := securityPage()
	page.Factors = []pages.FactorRow{
		{ID: "a", Kind: "totp", Name: "Authenticator app", AddedAt: now.Add(-48 * time.Hour)},
		{ID: "b", Kind: "totp", Name: "Authenticator app", AddedAt: now.Add(-24 * time.Hour)},
		{ID: "c", Kind: "totp", Name: "Rae's phone", AddedAt: now.Add(-time.Hour)},
		{ID: "d", Kind: "passkey", Name: "Rae's phone", AddedAt: now.Add(-time.Hour)},
		{ID: "e", Kind: "passkey", Name: "Key", AddedAt: now},
		{ID: "f", Kind: "passkey", Name: "Key", AddedAt: now},
	}
	doc := render(t, pages.Security(page))

	wantPostForm(t, doc.Selection, "Yes, remove Authenticator app (authenticator app, added 8 Mar 2026 12:00 UTC)", "/account/security/factors/a/delete")
	wantPostForm(t, doc.Selection, "Yes, remove Authenticator app (authenticator app, added 9 Mar 2026 12:00 UTC)", "/account/security/factors/b/delete")
	wantPostForm(t, doc.Selection, "Yes, remove Rae's phone (authenticator app)", "/account/security/factors/c/delete")
	wantPostForm(t, doc.Selection, "Save name for Rae's phone (passkey)", "/account/security/factors/d/rename")
	wantPostForm(t, doc.Selection, "Yes, remove Key (passkey, added 10 Mar 2026 12:00 UTC) (1)", "/account/security/factors/e/delete")
	wantPostForm(t, doc.Selection, "Yes, remove Key (passkey, added 10 Mar 2026 12:00 UTC) (2)", "/account/security/factors/f/delete")
	// What a person reads stays the name they gave; the accessible name begins with it (WCAG
	// 2.5.3, label in name).
	if got := text(factorRows(doc).Eq(3).Find("h3")); got != "Rae's phone" {
		t.Errorf("heading = %q, want the name", got)
	}
	if got := text(button(doc.Selection, "Yes, remove Authenticator app (authenticator app, added 8 Mar 2026 12:00 UTC)")); got != "Yes, remove Authenticator app" {
		t.Errorf("remove button reads %q, want the name", got)
	}
	wantUniqueNames(t, doc)
}

// wantUniqueNames fails when two controls or labels in <main> share an accessible name.
func wantUniqueNames(t *testing.T, doc *goquery.Document) {
	t.Helper()
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
}

func TestSecurityWithoutFactors(t *testing.T) {
	page := securityPage()
	page.Factors, page.RecoveryCodesLeft = nil, 0
	doc := render(t, pages.Security(page))

	if got := text(doc.Find("p.lead")); got != "Only your password protects your account." {
		t.Errorf("summary = %q", got)
	}
	if n := factorRows(doc).Length(); n != 0 {
		t.Errorf("%d factor rows", n)
	}
	if n := doc.Find("details").Length(); n != 0 {
		t.Errorf("%d disclosures without a factor", n)
	}
	if strings.Contains(text(doc.Find("main")), "Recovery codes") {
		t.Error("recovery codes are offered without a second factor")
	}
	for _, h := range []string{"Add an authenticator app", "Add a passkey"} {
		if doc.Find("h2").FilterFunction(func(_ int, s *goquery.Selection) bool { return text(s) == h }).Length() != 1 {
			t.Errorf("no heading %q", h)
		}
	}
	wantPostForm(t, doc.Selection, "Set up an authenticator app", "/account/security/totp")
}

func TestSecurityRecoveryCodesLeft(t *testing.T) {
	for _, c := range []struct {
		left  int
		want  string
		alert bool
	}{
		{10, "You have 10 recovery codes left.", false},
		{4, "You have 4 recovery codes left.", false},
		{3, "You have 3 recovery codes left. Make new ones, and keep them somewhere safe.", true},
		{1, "You have 1 recovery code left. Make new ones, and keep them somewhere safe.", true},
		{0, "You have no recovery codes left. Make new ones, and keep them somewhere safe.", true},
	} {
		page := securityPage()
		page.RecoveryCodesLeft = c.left
		doc := render(t, pages.Security(page))
		section := doc.Find(`section[aria-labelledby="recovery"]`)
		if got := text(section.Find("#recovery")); got != "Recovery codes" {
			t.Fatalf("recovery heading = %q", got)
		}
		if !strings.Contains(text(section), c.want) {
			t.Errorf("%d left: section %q does not say %q", c.left, text(section), c.want)
		}
		if got := section.Find(".alert").Length() == 1; got != c.alert {
			t.Errorf("%d left: warning shown = %v, want %v", c.left, got, c.alert)
		}
		wantDescribedBy(t, section, button(section, "Make new recovery codes"), "New codes replace the ones you have: the old ones stop working.")
	}
}

func TestSecurityShowsNamesAsText(t *testing.T) {
	page := securityPage()
	page.Factors[0].Name = markup
	doc := render(t, pages.Security(page))
	if n := doc.Find("script:not([src])").Length(); n != 0 {
		t.Fatalf("a factor name became %d inline scripts", n)
	}
	if got := text(factorRows(doc).Eq(0).Find("h3")); got != markup {
		t.Errorf("heading = %q, want the name as text", got)
	}
	button(doc.Selection, "Yes, remove "+markup)
}

func enrolPage() pages.TOTPEnrolPage {
	return pages.TOTPEnrolPage{
		Frame:    signedIn("Set up your authenticator app"),
		FactorID: "f-new",
		Secret:   "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ",
		URI:      "otpauth://totp/Gatehouse:ada@example.com?issuer=Gatehouse&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ",
		QR:       testQR(),
		Name:     "Authenticator app",
	}
}

// testQR is a small made-up module pattern (not a real QR code): runs of several lengths, a
// lone module, an empty row and a row that ends dark.
func testQR() [][]bool {
	rows := []string{
		"...........",
		".###.#..##.",
		"...........",
		"#.........#",
		".#########.",
		"..#.#.#.#..",
		"##########.",
		"...#......#",
		"...........",
		"#.#.#.#.#.#",
		"..........#",
	}
	out := make([][]bool, len(rows))
	for y, r := range rows {
		out[y] = make([]bool, len(r))
		for x, c := range r {
			out[y][x] = c == '#'
		}
	}
	return out
}

var pathRect = regexp.MustCompile(`M(\d+) (\d+)h(\d+)v1h-(\d+)z`)

// The QR code is an SVG image with a name, drawn dark on a white background that fills it (the
// quiet zone is light in a dark theme too), whose path covers exactly the dark modules.
func TestTOTPEnrolQRCode(t *testing.T) {
	page := enrolPage()
	doc := render(t, pages.TOTPEnrol(page))

	svg := doc.Find("main svg")
	if svg.Length() != 1 {
		t.Fatalf("%d svg elements, want 1", svg.Length())
	}
	if got := svg.AttrOr("role", ""); got != "img" {
		t.Errorf("svg role = %q, want img", got)
	}
	if got := svg.AttrOr("aria-label", ""); got != "QR code for your authenticator app" {
		t.Errorf("svg name = %q", got)
	}
	if got := svg.AttrOr("viewBox", svg.AttrOr("viewbox", "")); got != "0 0 11 11" {
		t.Errorf("viewBox = %q, want the module count", got)
	}
	width, err := strconv.Atoi(svg.AttrOr("width", ""))
	if err != nil || width < 200 || width%11 != 0 || svg.AttrOr("height", "") != svg.AttrOr("width", "") {
		t.Errorf("drawn %q×%q: want a square of at least 200 px, a whole number of pixels per module", svg.AttrOr("width", ""), svg.AttrOr("height", ""))
	}
	if got := svg.Find("rect").AttrOr("fill", ""); got != "#fff" {
		t.Errorf("background fill = %q, want white", got)
	}

	d := svg.Find("path").AttrOr("d", "")
	if got := pathRect.ReplaceAllString(d, ""); got != "" {
		t.Fatalf("path has more than rectangles of whole modules: %q", got)
	}
	drawn := make([][]bool, len(page.QR))
	for y := range drawn {
		drawn[y] = make([]bool, len(page.QR[y]))
	}
	for _, m := range pathRect.FindAllStringSubmatch(d, -1) {
		x, _ := strconv.Atoi(m[1])
		y, _ := strconv.Atoi(m[2])
		w, _ := strconv.Atoi(m[3])
		if m[3] != m[4] {
			t.Fatalf("rectangle %q does not close", m[0])
		}
		for i := x; i < x+w; i++ {
			if drawn[y][i] {
				t.Errorf("module %d,%d drawn twice", i, y)
			}
			drawn[y][i] = true
		}
	}
	for y := range page.QR {
		for x := range page.QR[y] {
			if drawn[y][x] != page.QR[y][x] {
				t.Errorf("module %d,%d: drawn %v, want %v", x, y, drawn[y][x], page.QR[y][x])
			}
		}
	}
}

// The key is shown as text (grouped for reading by markup, not by spaces, so that its text is the
// key), and a phone can hand the otpauth URI to its app.
func TestTOTPEnrolSecretAndLink(t *testing.T) {
	page := enrolPage()
	doc := render(t, pages.TOTPEnrol(page))

	secret := doc.Find("code.secret")
	if got := secret.Text(); got != page.Secret {
		t.Errorf("secret text = %q, want %q", got, page.Secret)
	}
	if n := secret.Children().Filter("span").Length(); n != 8 {
		t.Errorf("secret in %d groups, want 8 of four", n)
	}
	wantLink(t, doc.Selection, "Open in your authenticator app", page.URI)
	if !strings.Contains(text(doc.Find("main")), "Can't scan it? Type this key into the app instead:") {
		t.Error("the key is not introduced")
	}
}

func TestTOTPEnrolForm(t *testing.T) {
	doc := render(t, pages.TOTPEnrol(enrolPage()))

	if got := text(doc.Find("main h1")); got != "Set up your authenticator app" {
		t.Errorf("h1 = %q", got)
	}
	wantPostForm(t, doc.Selection, "Turn on", "/account/security/totp/confirm")
	form := button(doc.Selection, "Turn on").Closest("form")
	if got := form.Find(`input[type="hidden"][name="factor"]`).AttrOr("value", ""); got != "f-new" {
		t.Errorf("factor = %q", got)
	}
	name := field(t, form, "Name for this app")
	if name.AttrOr("name", "") != "name" || name.AttrOr("value", "") != "Authenticator app" {
		t.Errorf("name field: name=%q value=%q", name.AttrOr("name", ""), name.AttrOr("value", ""))
	}
	code := field(t, form, "6-digit code from the app")
	for attr, want := range map[string]string{"name": "code", "inputmode": "numeric", "autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false"} {
		if got := code.AttrOr(attr, ""); got != want {
			t.Errorf("code field %s = %q, want %q", attr, got, want)
		}
	}
	if _, ok := code.Attr("value"); ok && code.AttrOr("value", "") != "" {
		t.Errorf("the code field comes with a value %q", code.AttrOr("value", ""))
	}
	if n := doc.Find("[autofocus]").Length(); n != 0 {
		t.Errorf("%d fields take focus without an error", n)
	}
	wantLink(t, doc.Selection, "Cancel", "/account/security")
}

func TestTOTPEnrolErrors(t *testing.T) {
	page := enrolPage()
	page.Error = "That code is not right."
	doc := render(t, pages.TOTPEnrol(page))
	wantFieldError(t, doc.Selection, "6-digit code from the app", "That code is not right.")
	wantErrorSummary(t, doc, formOf(t, doc, "/account/security/totp/confirm"), line{"6-digit code from the app", "That code is not right."})
	if _, ok := field(t, doc.Selection, "Name for this app").Attr("aria-invalid"); ok {
		t.Error("the name field is marked invalid")
	}

	page = enrolPage()
	page.Name, page.NameError = strings.Repeat("n", 65), "Use at most 64 characters."
	doc = render(t, pages.TOTPEnrol(page))
	wantFieldError(t, doc.Selection, "Name for this app", "Use at most 64 characters.")
	if got := field(t, doc.Selection, "Name for this app").AttrOr("value", ""); got != page.Name {
		t.Errorf("name field holds %q, want the refused input", got)
	}
	wantErrorSummary(t, doc, formOf(t, doc, "/account/security/totp/confirm"), line{"Name for this app", "Use at most 64 characters."})
}

func recoveryCodes() []string {
	return []string{"k7mq2-xpd4a-9tzhe-8wpbn-r3cvs", "b3nf6-rcay2-jv9gk-s4mdx-t5wjq", "x8hd4-p4mwz-7eqz3-ntbc2-vr9ky", "c2vr9-kyf6s-ah4md-xt5wj-3bqe8", "t5wj3-bqe8p-nc7zr-hg9ma-2xtd5", "g9ma2-xtd5k-wv6qf-yr4zs-7hpb3", "r4zs7-hpb3c-nj9ev-wn6ye-8dkq2", "n6ye8-dkq2r-xm5tg-sw3pc-5vfa9", "w3pc5-vfa9j-zh7bk-nh8tx-4qmr6", "h8tx4-qmr6w-dy2cs-pk7mq-2xpd4"}
}

func TestRecoveryCodesShownOnce(t *testing.T) {
	codes := recoveryCodes()
	doc := render(t, pages.RecoveryCodes(pages.RecoveryCodesPage{Frame: signedIn("Save your recovery codes"), Codes: codes, First: true}))

	if got := text(doc.Find("main h1")); got != "Save your recovery codes" {
		t.Errorf("h1 = %q", got)
	}
	if got := text(doc.Find(`main [role="status"]`)); got != "Second factor added." {
		t.Errorf("status = %q, want the factor's confirmation", got)
	}
	items := doc.Find(`ul[aria-label="Recovery codes"] > li`)
	got := items.Map(func(_ int, s *goquery.Selection) string { return text(s.Find("code")) })
	if strings.Join(got, " ") != strings.Join(codes, " ") {
		t.Errorf("codes listed %q, want %q", got, codes)
	}
	main := text(doc.Find("main"))
	for _, want := range []string{"We show them only now.", "Once you leave this page, they cannot be shown again.", "each of these codes signs you in once"} {
		if !strings.Contains(main, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
	if strings.Contains(main, "no longer work") {
		t.Error("the first set speaks of old codes")
	}
	wantLink(t, doc.Selection, "I have saved them", "/account/security")
	if !link(doc.Selection, "I have saved them").HasClass("primary") {
		t.Error("continuing is not the primary action")
	}
}

func TestRecoveryCodesNewSet(t *testing.T) {
	doc := render(t, pages.RecoveryCodes(pages.RecoveryCodesPage{Frame: signedIn("Your new recovery codes"), Codes: recoveryCodes()}))
	if !strings.Contains(text(doc.Find("main")), "These replace your old recovery codes, which no longer work.") {
		t.Error("a new set does not say the old codes stopped working")
	}
	if n := doc.Find(`main [role="status"]`).Length(); n != 0 {
		t.Errorf("%d status notices on a new set", n)
	}
	if n := doc.Find(`ul[aria-label="Recovery codes"] code`).Length(); n != 10 {
		t.Errorf("%d codes, want 10", n)
	}
}

func secondFactorPage() pages.SecondFactorPage {
	return pages.SecondFactorPage{Frame: signedOut("Confirm it's you"), Next: "/account", TOTP: true, RecoveryCodes: 10}
}

func TestSecondFactorCodeField(t *testing.T) {
	for _, c := range []struct {
		name      string
		page      func(p *pages.SecondFactorPage)
		label     string
		inputmode string // numeric only when no recovery code can be typed: those have letters
	}{
		{"app and recovery codes", func(p *pages.SecondFactorPage) {}, "Code from your app, or a recovery code", ""},
		{"app only", func(p *pages.SecondFactorPage) { p.RecoveryCodes = 0 }, "Code from your app", "numeric"},
		{"recovery codes only", func(p *pages.SecondFactorPage) { p.TOTP = false }, "Recovery code", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			page := secondFactorPage()
			c.page(&page)
			doc := render(t, pages.SecondFactor(page))

			if got := text(doc.Find("main h1")); got != "Confirm it's you" {
				t.Errorf("h1 = %q", got)
			}
			wantPostForm(t, doc.Selection, "Continue", "/login/second-factor")
			form := button(doc.Selection, "Continue").Closest("form")
			if got := form.Find(`input[type="hidden"][name="next"]`).AttrOr("value", ""); got != "/account" {
				t.Errorf("next = %q", got)
			}
			code := field(t, form, c.label)
			if code.AttrOr("name", "") != "code" || code.AttrOr("autocomplete", "") != "one-time-code" {
				t.Errorf("code field name=%q autocomplete=%q", code.AttrOr("name", ""), code.AttrOr("autocomplete", ""))
			}
			if got := code.AttrOr("inputmode", ""); got != c.inputmode {
				t.Errorf("inputmode = %q, want %q", got, c.inputmode)
			}
			if n := doc.Find("[autofocus]").Length(); n != 0 {
				t.Errorf("%d fields take focus without an error", n)
			}
			wantNoFieldError(t, form, c.label)
			wantLink(t, doc.Selection, "Start again", "/login")
		})
	}
}

// A refused code is said next to the field, tied to it, and announced: the error summary at the
// top of the form takes the focus and links to the field.
func TestSecondFactorError(t *testing.T) {
	page := secondFactorPage()
	page.Error = "That code is not right. Try the newest code your app shows, or a recovery code."
	doc := render(t, pages.SecondFactor(page))
	wantFieldError(t, doc.Selection, "Code from your app, or a recovery code", page.Error)
	wantErrorSummary(t, doc, formOf(t, doc, "/login/second-factor"), line{"Code from your app, or a recovery code", page.Error})
}

// With a passkey too, the page offers it (the passkey form posts to the same route), and only one
// button is primary: the app's code when there is an app, none when a recovery code is the fallback.
func TestSecondFactorWithPasskeys(t *testing.T) {
	for _, c := range []struct {
		name      string
		totp      bool
		primaries int
	}{
		{"app and passkey", true, 1},
		{"passkey and recovery codes", false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			page := secondFactorPage()
			page.TOTP, page.Passkeys = c.totp, true
			doc := render(t, pages.SecondFactor(page))
			if n := doc.Find(`form[action="/login/second-factor"]`).Length(); n != 2 {
				t.Errorf("%d forms post to /login/second-factor, want the code's and the passkey's", n)
			}
			if n := doc.Find("main .primary").Length(); n != c.primaries {
				t.Errorf("%d primary buttons, want %d", n, c.primaries)
			}
		})
	}
	doc := render(t, pages.SecondFactor(secondFactorPage()))
	if n := doc.Find(`form[action="/login/second-factor"]`).Length(); n != 1 {
		t.Errorf("without a passkey, %d forms post to /login/second-factor, want 1", n)
	}
}

func confirmPage() pages.ConfirmPasswordPage {
	return pages.ConfirmPasswordPage{Frame: signedIn("Confirm it's you"), Action: "/account/security", Purpose: "change how you sign in"}
}

func TestConfirmPasswordOnly(t *testing.T) {
	doc := render(t, pages.ConfirmPassword(confirmPage()))

	if got := text(doc.Find("main h1")); got != "Confirm it's you" {
		t.Errorf("h1 = %q", got)
	}
	if !strings.Contains(text(doc.Find("main")), "To change how you sign in, enter your password again.") {
		t.Error("the page does not say what the password is for")
	}
	wantPostForm(t, doc.Selection, "Confirm", "/account/security")
	field(t, doc.Selection, "Password")
	if n := doc.Find(`input[name="code"]`).Length(); n != 0 {
		t.Errorf("%d code fields without a second factor", n)
	}
	if strings.Contains(text(doc.Find("main")), "Or use a code") {
		t.Error("a code is offered without a second factor")
	}
	if n := doc.Find(`main form[method="post"]`).Length(); n != 1 {
		t.Errorf("%d forms, want the password's only", n)
	}
	wantLink(t, doc.Selection, "Cancel", "/devices")
}

// With a second factor and a passkey, the password stays the one primary way; a code and a passkey
// follow it as the other ways, all posting to the action being confirmed.
func TestConfirmPasswordOtherWays(t *testing.T) {
	page := confirmPage()
	page.Codes, page.Passkeys = true, true
	doc := render(t, pages.ConfirmPassword(page))

	primaries := doc.Find("main .primary")
	if primaries.Length() != 1 || text(primaries) != "Confirm" {
		t.Errorf("primary buttons %q, want only \"Confirm\"", primaries.Map(func(_ int, s *goquery.Selection) string { return text(s) }))
	}
	if doc.Find("h2").FilterFunction(func(_ int, s *goquery.Selection) bool { return text(s) == "Or use a code" }).Length() != 1 {
		t.Error("no \"Or use a code\" heading")
	}
	wantPostForm(t, doc.Selection, "Confirm with the code", "/account/security")
	code := field(t, doc.Selection, "Code from your authenticator app, or a recovery code")
	if code.AttrOr("name", "") != "code" || code.AttrOr("autocomplete", "") != "one-time-code" {
		t.Errorf("code field name=%q autocomplete=%q", code.AttrOr("name", ""), code.AttrOr("autocomplete", ""))
	}
	if n := doc.Find(`form[action="/account/security"]`).Length(); n != 3 {
		t.Errorf("%d forms post to the action, want password, code and passkey", n)
	}
	wantUniqueNames(t, doc)
}

func TestConfirmPasswordCodeError(t *testing.T) {
	page := confirmPage()
	page.Codes, page.CodeError = true, "That code is not right."
	doc := render(t, pages.ConfirmPassword(page))
	wantFieldError(t, doc.Selection, "Code from your authenticator app, or a recovery code", "That code is not right.")
	wantErrorSummary(t, doc, button(doc.Selection, "Confirm with the code").Closest("form"),
		line{"Code from your authenticator app, or a recovery code", "That code is not right."})
	if _, ok := field(t, doc.Selection, "Password").Attr("aria-invalid"); ok {
		t.Error("the password is marked invalid after a refused code")
	}
}

// Every state of these pages: ids unique, every input labelled, every description present, every
// POST form with the CSRF token, no inline script or style (the CSP forbids them).
func TestSecurityPagesAreWellFormed(t *testing.T) {
	withError := securityPage()
	withError.Factors[0].RenameError, withError.Factors[0].Last = "x", true
	enrolError := enrolPage()
	enrolError.Error, enrolError.NameError = "x", "y"
	second := secondFactorPage()
	second.Passkeys, second.Error = true, "x"
	confirm := confirmPage()
	confirm.Codes, confirm.Passkeys, confirm.Error, confirm.CodeError = true, true, "x", "y"
	for name, page := range map[string]templ.Component{
		"security":       pages.Security(withError),
		"no factors":     pages.Security(pages.SecurityPage{Frame: signedIn("Sign-in security"), Now: now}),
		"enrol":          pages.TOTPEnrol(enrolError),
		"recovery codes": pages.RecoveryCodes(pages.RecoveryCodesPage{Frame: signedIn("Save your recovery codes"), Codes: recoveryCodes(), First: true}),
		"second factor":  pages.SecondFactor(second),
		"confirm":        pages.ConfirmPassword(confirm),
	} {
		t.Run(name, func(t *testing.T) {
			doc := render(t, page)
			seen := map[string]bool{}
			doc.Find("[id]").Each(func(_ int, s *goquery.Selection) {
				id := s.AttrOr("id", "")
				if seen[id] {
					t.Errorf("id %q is used twice", id)
				}
				seen[id] = true
			})
			doc.Find(`input:not([type="hidden"])`).Each(func(_ int, in *goquery.Selection) {
				id := in.AttrOr("id", "")
				if id == "" || doc.Find(`label[for="`+id+`"]`).Length() != 1 {
					t.Errorf("input %q has no label of its own", in.AttrOr("name", ""))
				}
			})
			doc.Find("[aria-describedby]").Each(func(_ int, s *goquery.Selection) {
				for _, ref := range strings.Fields(s.AttrOr("aria-describedby", "")) {
					if doc.Find(`[id="`+ref+`"]`).Length() != 1 {
						t.Errorf("<%s> is described by %q, which is not on the page", goquery.NodeName(s), ref)
					}
				}
			})
			doc.Find(`form[method="post"]`).Each(func(_ int, f *goquery.Selection) {
				if f.Find(`input[type="hidden"][name="_csrf"]`).AttrOr("value", "") != token {
					t.Errorf("form %q has no CSRF token", f.AttrOr("action", ""))
				}
			})
			if n := doc.Find("script:not([src]), style, [style]").Length(); n != 0 {
				t.Errorf("%d inline scripts or styles", n)
			}
			if n := doc.Find("main h1").Length(); n != 1 {
				t.Errorf("%d h1 elements, want 1", n)
			}
		})
	}
}

// The navigation has "Security", marked as the current page on /account/security only, and the
// account page links to it.
func TestSecurityIsInTheNavigation(t *testing.T) {
	page := securityPage()
	page.Path = "/account/security"
	doc := render(t, pages.Security(page))
	header := doc.Find("header")
	wantLink(t, header, "Security", "/account/security")
	current := header.Find(`nav a[aria-current="page"]`)
	if current.Length() != 1 || text(current) != "Security" {
		t.Errorf("current page links %q, want only Security", current.Map(func(_ int, s *goquery.Selection) string { return text(s) }))
	}

	account := pages.AccountPage{Frame: signedIn("Account"), Email: "ada@example.com"}
	account.Path = "/account"
	doc = render(t, pages.Account(account))
	wantLink(t, doc.Find("main"), "Sign-in security: second factors and passkeys", "/account/security")
	if current := doc.Find(`header nav a[aria-current="page"]`); text(current) != "Account" {
		t.Errorf("on /account the current link is %q", text(current))
	}
}

// "Your devices" says how each device signed in, where that is known.
func TestDevicesSayHowEachSignedIn(t *testing.T) {
	page := devicesPage()
	page.Devices[0].SignedInWith = "Password and authenticator app"
	page.Devices[1].SignedInWith = ""
	doc := render(t, pages.Devices(page))
	rows := doc.Find(`ul[aria-label="Devices"] > li`)
	if got := factFor(t, rows.Eq(0), "Signed in with"); got != "Password and authenticator app" {
		t.Errorf("Signed in with = %q", got)
	}
	if n := rows.Eq(1).Find("dt").FilterFunction(func(_ int, s *goquery.Selection) bool { return text(s) == "Signed in with" }).Length(); n != 0 {
		t.Error("a device whose sign-in method is unknown shows an empty fact")
	}
}

// Where passkeys cannot work (no JavaScript, no support in the browser), the page says so in place
// of the passkey form: the paragraph follows the form, which the stylesheet uses to hide it once
// the script shows the form.
func TestSecuritySaysWhenPasskeysCannotBeAdded(t *testing.T) {
	doc := render(t, pages.Security(securityPage()))
	fallback := doc.Find(`form[action="/account/security/passkeys"] ~ p.passkey-fallback`)
	if got := text(fallback); got != "A passkey can't be added here: that needs JavaScript and a browser that supports passkeys." {
		t.Errorf("after the passkey form: %q", got)
	}
}
