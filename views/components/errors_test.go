package components_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"gatehouse/views/components"
)

// renderSummary renders an error summary as a browser would parse it.
func renderSummary(t *testing.T, errors []components.FieldError) (*goquery.Document, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := components.ErrorSummary(errors).Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	html := buf.String()
	doc, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc, html
}

func words(s *goquery.Selection) string { return strings.Join(strings.Fields(s.Text()), " ") }

func TestErrorSummaryWithoutErrorsIsNothing(t *testing.T) {
	if _, html := renderSummary(t, nil); strings.TrimSpace(html) != "" {
		t.Errorf("no errors render %q, want nothing", html)
	}
}

// The summary is focusable without being in the tab order, takes the focus on arrival, is an
// alert headed "There is a problem", and links each error to its field, in the order given.
func TestErrorSummary(t *testing.T) {
	doc, _ := renderSummary(t, []components.FieldError{
		{ID: "field-email", Label: "Email", Message: "Enter your email address."},
		{ID: "field-password", Label: "Password", Message: "Use at least 10 characters."},
		{ID: "factor-name-x", Message: "No label given."},
	})
	box := doc.Find(".error-summary")
	if box.Length() != 1 || box.AttrOr("tabindex", "") != "-1" {
		t.Fatalf("summary box: %d, tabindex %q; want one with tabindex -1", box.Length(), box.AttrOr("tabindex", ""))
	}
	if _, ok := box.Attr("autofocus"); !ok {
		t.Error("the summary does not take the focus")
	}
	alert := box.Find(`[role="alert"]`)
	if got := words(alert.Find("h2")); got != "There is a problem" {
		t.Errorf("heading %q", got)
	}
	var got []string
	alert.Find("li > a").Each(func(_ int, a *goquery.Selection) {
		got = append(got, a.AttrOr("href", "")+" "+words(a))
	})
	want := []string{
		"#field-email Email: Enter your email address.",
		"#field-password Password: Use at least 10 characters.",
		"#factor-name-x No label given.",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("links:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// ErrorsOf keeps the fields' order, skips the fields without an error and links to each field's
// own id (its ID, or "field-" + Name).
func TestErrorsOf(t *testing.T) {
	got := components.ErrorsOf(
		components.FieldProps{Name: "email", Label: "Email", Error: "Enter your email address."},
		components.FieldProps{Name: "display_name", Label: "Display name"},
		components.FieldProps{ID: "field-delete-current_password", Name: "current_password", Label: "Your password", Error: "Wrong."},
	)
	want := []components.FieldError{
		{ID: "field-email", Label: "Email", Message: "Enter your email address."},
		{ID: "field-delete-current_password", Label: "Your password", Message: "Wrong."},
	}
	if len(got) != len(want) {
		t.Fatalf("ErrorsOf = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ErrorsOf[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if got := components.ErrorsOf(components.FieldProps{Name: "email"}); got != nil {
		t.Errorf("no errors: %+v, want none", got)
	}
}
