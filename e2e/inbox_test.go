// Mail in the stories: a story's server sends to a Mailpit of its own
// (gatehouse/services/mail/mailpit, a real SMTP server), and the person reads
// the message there and follows its link in the browser.

package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/services/mail/mailpit"
)

// mailWait is how long a story waits for a message before it fails: a failure
// bound, not a measurement. The server's sender delivers in the background,
// and the machine may be busy with other tests.
const mailWait = 60 * time.Second

// startServerWithMail starts Mailpit for this story and a server of its own
// that sends its mail there (GATEHOUSE_SMTP_URL), with env on top. Without
// Mailpit the story is skipped, or fails under CI=true (mailpit.New). If the
// story fails, what the inbox holds is logged.
func (db database) startServerWithMail(t *testing.T, env map[string]string) (*server, *mailpit.Server) {
	t.Helper()
	inbox := mailpit.New(t, mailpit.Options{})
	t.Cleanup(func() { // before Mailpit stops: cleanups run last-in first-out
		if t.Failed() {
			t.Logf("e2e: the inbox of the story's Mailpit (%s):\n%s", inbox.WebURL(), inboxListing(inbox))
		}
	})
	all := map[string]string{"GATEHOUSE_SMTP_URL": inbox.SMTPURL()}
	maps.Copy(all, env)
	return db.startServer(t, all), inbox
}

// waitForEmail waits until the n-th message (counting from the first to
// arrive) to address with this subject is in the inbox, and reads it in full.
func waitForEmail(t testing.TB, inbox *mailpit.Server, n int, address, subject string) *mailpit.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mailWait)
	defer cancel()
	for {
		msgs, err := inbox.Messages(ctx)
		if found := emailsTo(msgs, address, subject); len(found) >= n {
			full, err := inbox.Message(ctx, found[n-1].ID)
			if err != nil {
				t.Fatalf("e2e: reading the email %q to %s: %v", subject, address, err)
			}
			return full
		}
		select {
		case <-ctx.Done():
			t.Fatalf("e2e: waited %v for email #%d to %s with the subject %q (last error: %v); the inbox holds:\n%s",
				mailWait, n, address, subject, err, inboxListing(inbox))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// emailsTo picks the messages to address with this subject, oldest first
// (Mailpit lists the newest first).
func emailsTo(msgs []mailpit.Summary, address, subject string) []mailpit.Summary {
	var found []mailpit.Summary
	for _, m := range msgs {
		if m.Subject == subject && mailpit.Find([]mailpit.Summary{m}, address) != nil {
			found = append(found, m)
		}
	}
	slices.Reverse(found)
	return found
}

// inboxListing is one line per message, newest first, for failure messages.
func inboxListing(inbox *mailpit.Server) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := inbox.Messages(ctx)
	if err != nil {
		return fmt.Sprintf("(cannot list: %v)", err)
	}
	if len(msgs) == 0 {
		return "(empty)"
	}
	var b strings.Builder
	for _, m := range msgs {
		var to []string
		for _, a := range m.To {
			to = append(to, a.Address)
		}
		fmt.Fprintf(&b, "  %s  to %s: %q\n", m.Created.Format(time.RFC3339Nano), strings.Join(to, ", "), m.Subject)
	}
	return b.String()
}

// followEmailLink shows the message's HTML body on the device, as a mail
// reader would, and clicks its link named name (the button-like link, e.g.
// "Choose a new password"). The link must lead to the portal and be written
// in the text body too, for readers that show only text. It returns the link.
func followEmailLink(t testing.TB, d *device, srv *server, msg *mailpit.Message, name string) string {
	t.Helper()
	goTo(t, d.Page, "about:blank")
	step(t, "show the email "+msg.Subject, d.Page.SetContent(msg.HTML))
	target := link(d.Page, name)
	href, err := target.GetAttribute("href")
	step(t, "the address of the link "+name, err)
	if !strings.HasPrefix(href, srv.URL+"/") {
		t.Fatalf("e2e: the link %q in the email %q leads to %s, not to the portal at %s", name, msg.Subject, href, srv.URL)
	}
	if !strings.Contains(msg.Text, href) {
		t.Fatalf("e2e: the text body of the email %q lacks the link %s:\n%s", msg.Subject, href, msg.Text)
	}
	click(t, target, name)
	return href
}

// expectEmailSays checks that the text body of the message holds text.
func expectEmailSays(t testing.TB, msg *mailpit.Message, text string) {
	t.Helper()
	if !strings.Contains(msg.Text, text) {
		t.Errorf("e2e: the email %q does not say %q:\n%s", msg.Subject, text, msg.Text)
	}
}
