package mailpit_test

import (
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse/services/mail/mailpit"
)

// TestHarnessReceivesAndSurvivesRestart: a message sent over SMTP shows in the API; after Stop
// the SMTP port refuses; after Start, on the same port, the inbox is still there and new mail
// arrives.
func TestHarnessReceivesAndSurvivesRestart(t *testing.T) {
	srv := mailpit.New(t, mailpit.Options{})
	ctx := t.Context()
	send := func(subject string) error {
		return smtp.SendMail(srv.SMTPAddr(), nil, "from@example.com", []string{"to@example.com"},
			[]byte("From: from@example.com\r\nTo: to@example.com\r\nSubject: "+subject+"\r\n\r\nbody\r\n"))
	}
	if err := send("first"); err != nil {
		t.Fatalf("send: %v", err)
	}
	msgs, err := srv.WaitForMessages(ctx, 1)
	if err != nil || len(msgs) != 1 || msgs[0].Subject != "first" {
		t.Fatalf("messages: %+v, %v", msgs, err)
	}
	full, err := srv.Message(ctx, msgs[0].ID)
	if err != nil || strings.TrimSpace(full.Text) != "body" || full.To[0].Address != "to@example.com" {
		t.Fatalf("message: %+v, %v", full, err)
	}
	if raw, err := srv.Raw(ctx, msgs[0].ID); err != nil || !strings.Contains(string(raw), "Subject: first") {
		t.Fatalf("raw: %q, %v", raw, err)
	}

	addr := srv.SMTPAddr()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := send("while stopped"); err == nil {
		t.Fatal("a stopped Mailpit accepted a message")
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.SMTPAddr() != addr {
		t.Errorf("SMTP address after restart %s, want %s", srv.SMTPAddr(), addr)
	}
	if err := send("second"); err != nil {
		t.Fatalf("send after restart: %v", err)
	}
	msgs, err = srv.WaitForMessages(ctx, 2)
	if err != nil || len(msgs) != 2 || msgs[0].Subject != "second" {
		t.Fatalf("messages after restart (newest first): %+v, %v", msgs, err)
	}

	if err := srv.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if msgs, err := srv.Messages(ctx); err != nil || len(msgs) != 0 {
		t.Errorf("after DeleteAll: %+v, %v", msgs, err)
	}
}

// TestEnsureKeepsThePinnedVersion: the binary the harness runs was built from the pinned module
// version (read from its build information, not its name).
func TestEnsureKeepsThePinnedVersion(t *testing.T) {
	if os.Getenv(mailpit.EnvBinary) != "" {
		t.Skipf("%s names the binary", mailpit.EnvBinary)
	}
	mailpit.New(t, mailpit.Options{}) // skips, or fails under CI=true, when it cannot be built
	path, err := mailpit.Ensure(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want, err := mailpit.CachedPath()
	if err != nil || path != want {
		t.Errorf("Ensure: %s, want the cached %s (%v)", path, want, err)
	}
}

// TestStartReportsABinaryThatFails: a Mailpit that exits at once is an error with its output,
// not a wait.
func TestStartReportsABinaryThatFails(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "mailpit")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'cannot start: no luck' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := mailpit.Start(t.Context(), mailpit.Options{Binary: fake, Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "cannot start: no luck") {
		t.Errorf("Start with a failing binary: %v, want the exit and its output", err)
	}
}

// TestStartTriesOtherPortsWhenOneIsTaken: between finding a free port and Mailpit binding it,
// another process can take it (it happened in CI, two test servers at once). Mailpit then exits
// with "address already in use", and Start runs it again on new ports instead of failing.
func TestStartTriesOtherPortsWhenOneIsTaken(t *testing.T) {
	mailpit.New(t, mailpit.Options{}) // skips, or fails under CI=true, when it cannot be built
	binary, err := mailpit.Ensure(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	scripts := t.TempDir()
	firstTry := filepath.Join(scripts, "first-try")
	wrapper := filepath.Join(scripts, "mailpit")
	script := "#!/bin/sh\n" +
		"if [ ! -e " + firstTry + " ]; then\n" +
		"  touch " + firstTry + "\n" +
		"  echo 'level=error msg=\"listen tcp 127.0.0.1:1: bind: address already in use\"' >&2\n" +
		"  exit 1\n" +
		"fi\n" +
		"exec " + binary + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err := mailpit.Start(t.Context(), mailpit.Options{Binary: wrapper, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("Start after one taken port: %v", err)
	}
	defer srv.Close()
	if _, err := os.Stat(firstTry); err != nil {
		t.Fatalf("the first try did not run: %v", err)
	}
	if err := smtp.SendMail(srv.SMTPAddr(), nil, "from@example.com", []string{"to@example.com"},
		[]byte("Subject: second try\r\n\r\nhello\r\n")); err != nil {
		t.Fatalf("send to the Mailpit of the second try: %v", err)
	}
	if log, _ := os.ReadFile(srv.LogPath()); strings.Contains(string(log), "address already in use") {
		t.Errorf("the log of the running Mailpit still holds the first try's error:\n%s", log)
	}
}
