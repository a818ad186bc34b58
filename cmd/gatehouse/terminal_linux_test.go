package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gatehouse/cmd/gatehouse/harness"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
)

// terminal is a pseudo-terminal: the command reads from its tty side as from a person's terminal,
// and the test types on its other side and sees what the terminal shows (the echo of what was
// typed, when echo is on).
type terminal struct {
	ptm, tty *os.File
	mu       sync.Mutex
	shown    bytes.Buffer // what the terminal showed
	done     chan struct{}
}

func openTerminal(t *testing.T) *terminal {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no pseudo-terminal, and CI=true runs every test: %v", err)
		}
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err == nil {
		err = unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0)
	}
	if err != nil {
		ptm.Close()
		t.Fatalf("unlock the pseudo-terminal: %v", err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		ptm.Close()
		t.Fatalf("open the terminal side: %v", err)
	}
	term := &terminal{ptm: ptm, tty: tty, done: make(chan struct{})}
	go func() {
		defer close(term.done)
		buf := make([]byte, 4096)
		for {
			n, err := ptm.Read(buf)
			term.mu.Lock()
			term.shown.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return // the tty side is closed and drained (EIO)
			}
		}
	}()
	t.Cleanup(func() {
		tty.Close()
		ptm.Close()
		<-term.done
	})
	return term
}

// echoOff waits until the program reading the terminal has turned echo off, as a password prompt
// does before it reads.
func (term *terminal) echoOff(t *testing.T, ctx context.Context) {
	t.Helper()
	for {
		state, err := unix.IoctlGetTermios(int(term.tty.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatalf("read the terminal's settings: %v", err)
		}
		if state.Lflag&unix.ECHO == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the command did not turn the terminal's echo off to read a password")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// typeLine types line and Enter.
func (term *terminal) typeLine(t *testing.T, line string) {
	t.Helper()
	if _, err := term.ptm.Write([]byte(line + "\r")); err != nil {
		t.Fatalf("type on the terminal: %v", err)
	}
}

func (term *terminal) screen() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.shown.String()
}

// syncBuffer is a bytes.Buffer the command writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the command has written want.
func (b *syncBuffer) waitFor(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	for !strings.Contains(b.String(), want) {
		select {
		case <-ctx.Done():
			t.Fatalf("the command did not write %q; it wrote %q", want, b.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestUserCreateAsksOnATerminal: on a terminal, `user create` without --password-stdin asks for
// the password twice with echo off, so the terminal never shows it, and creates the account with
// it; two different answers create nothing.
func TestUserCreateAsksOnATerminal(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		env := baseEnv(t, db.URL)
		// create runs `user create --email email` on a terminal and types answers at its prompts.
		create := func(t *testing.T, email string, answers ...string) (stdout, stderr, screen string, err error) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			term := openTerminal(t)
			cmd, err := harness.CLI{Env: env}.Command(ctx, "user", "create", "--email", email)
			if err != nil {
				t.Fatal(err)
			}
			var out, errOut syncBuffer
			cmd.Stdin, cmd.Stdout, cmd.Stderr = term.tty, &out, &errOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			for i, prompt := range []string{"Password for the new account: ", "The same password again: "} {
				errOut.waitFor(t, ctx, prompt)
				term.echoOff(t, ctx)
				term.typeLine(t, answers[i])
			}
			err = cmd.Wait()
			return out.String(), errOut.String(), term.screen(), err
		}

		stdout, stderr, screen, err := create(t, "carol@example.com", password, password)
		if err != nil || !strings.HasPrefix(stdout, "created user carol@example.com (") {
			t.Fatalf("user create on a terminal: %v\nstdout: %q\nstderr: %q", err, stdout, stderr)
		}
		if strings.Contains(screen, password) || strings.Contains(stdout+stderr, password) {
			t.Fatalf("the password was shown: terminal %q, stdout %q, stderr %q", screen, stdout, stderr)
		}
		if _, err := newService(t, db).SignIn(context.Background(), "carol@example.com", password, auth.Client{DeviceID: "tty-test-device"}); err != nil {
			t.Fatalf("sign in with the password typed on the terminal: %v", err)
		}

		stdout, stderr, _, err = create(t, "dan@example.com", password, password+" but not quite")
		if err == nil || !strings.Contains(stderr, "the two passwords differ; nothing was created") {
			t.Fatalf("two different passwords: %v\nstdout: %q\nstderr: %q", err, stdout, stderr)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM users WHERE email = 'dan@example.com'"); n != 0 {
			t.Fatal("two different passwords created the account")
		}
	})
}
