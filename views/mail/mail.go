// Package mail holds the email Gatehouse sends: for each kind of message a view-model struct and
// a pair of templ components, one for the text body and one for the HTML body, in the portal's
// voice. Render turns a view model into the subject and both bodies; services/mail sends them.
// Nothing here tracks the reader: no images, no remote styles, no rewritten links.
//
// A text component is written in templ like the HTML one, with <p> for paragraphs and <br/> for
// line breaks, and Render turns that into plain text: templ folds the white space of its source,
// so markup is how a template says where lines break. Interpolated values come out as written
// (no HTML escapes in the text body).
package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/a-h/templ"
	"golang.org/x/net/html"

	"gatehouse/views/components"
)

// Email is one message's view model. Every kind in this package is one; no other type can be.
type Email interface {
	// Kind names the message for the outbox, the logs and the metrics, e.g. "password_reset".
	Kind() string
	// Subject is the message's subject line.
	Subject() string
	text() templ.Component
	html() templ.Component
}

// Rendered is a message ready for services/mail: its kind, subject and two bodies.
type Rendered struct {
	Kind    string
	Subject string
	Text    string // plain text, lines ending in "\n"
	HTML    string // a whole HTML document
}

// Render renders e's subject, text body and HTML body.
func Render(ctx context.Context, e Email) (Rendered, error) {
	var h bytes.Buffer
	if err := e.html().Render(ctx, &h); err != nil {
		return Rendered{}, fmt.Errorf("render %s mail (HTML): %w", e.Kind(), err)
	}
	var t bytes.Buffer
	if err := e.text().Render(ctx, &t); err != nil {
		return Rendered{}, fmt.Errorf("render %s mail (text): %w", e.Kind(), err)
	}
	text, err := plainText(&t)
	if err != nil {
		return Rendered{}, fmt.Errorf("render %s mail (text): %w", e.Kind(), err)
	}
	return Rendered{Kind: e.Kind(), Subject: e.Subject(), Text: text, HTML: h.String()}, nil
}

// plainText turns a text component's output into plain text: each <p> is a paragraph, separated
// from the next by a blank line; <br/> breaks a line; entities are decoded; runs of white space
// within a line become one space. Every other tag is dropped.
func plainText(r io.Reader) (string, error) {
	var paragraphs []string
	var current strings.Builder
	flush := func() {
		var lines []string
		for line := range strings.SplitSeq(current.String(), "\n") {
			lines = append(lines, strings.Join(strings.Fields(line), " "))
		}
		if p := strings.Trim(strings.Join(lines, "\n"), "\n"); p != "" {
			paragraphs = append(paragraphs, p)
		}
		current.Reset()
	}
	z := html.NewTokenizer(r)
	for {
		switch z.Next() {
		case html.ErrorToken:
			if !errors.Is(z.Err(), io.EOF) {
				return "", z.Err()
			}
			flush()
			return strings.Join(paragraphs, "\n\n") + "\n", nil
		case html.TextToken:
			// The tokenizer has decoded the entities; source line breaks are only white space.
			current.WriteString(strings.ReplaceAll(string(z.Text()), "\n", " "))
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			switch name, _ := z.TagName(); string(name) {
			case "p":
				flush()
			case "br":
				current.WriteString("\n")
			}
		}
	}
}

// when is a time as messages show it: in UTC, to the second, as on the portal's pages.
func when(t time.Time) string { return components.Exact(t) }

// forHuman is a lifetime as messages show it, the same words as the pages use.
func forHuman(d time.Duration) string { return components.Lifetime(d) }

// orUnknown shows a detail that may be missing (an app that sent no user agent).
func orUnknown(s string) string {
	if strings.TrimSpace(s) == "" {
		return "unknown"
	}
	return s
}

// codesLeft says how many recovery codes remain.
func codesLeft(n int) string {
	switch {
	case n <= 0:
		return "You have no recovery codes left: make new ones now."
	case n == 1:
		return "You have 1 recovery code left."
	}
	return fmt.Sprintf("You have %d recovery codes left.", n)
}
