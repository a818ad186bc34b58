package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"gatehouse/services/auth"
)

func userCommand(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprintln(stdout, "Usage:\n  gatehouse user create --email E [--name N] [--verified] --password-stdin\n  gatehouse user disable --email E\n  gatehouse user signout --email E\n  gatehouse user mfa reset --email E")
		if len(args) == 0 {
			return fmt.Errorf("%w: user needs create, disable, signout or mfa reset", errUsage)
		}
		return nil
	}
	switch args[0] {
	case "create":
		return userCreate(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "disable":
		return userDisable(ctx, args[1:], getenv, stdout, stderr)
	case "signout":
		return userSignOut(ctx, args[1:], getenv, stdout, stderr)
	case "mfa":
		return userMFA(ctx, args[1:], getenv, stdout, stderr)
	}
	return fmt.Errorf("%w: unknown user command %q (create, disable, signout or mfa reset)", errUsage, args[0])
}

func userCreate(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, values := newFlagSet("user create", "Creates an account. On a terminal it asks for the password (twice, not shown); otherwise --password-stdin reads it from the first line of standard input.")
	email := fs.String("email", "", "the account's email (required)")
	name := fs.String("name", "", "display name")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input (required)")
	verified := fs.Bool("verified", false, "mark the address verified (the operator vouches for it): no verification link is needed")
	if err := fs.Parse(args); err != nil {
		return usageError(fs, err, stdout)
	}
	terminal, onTerminal := stdin.(*os.File)
	onTerminal = onTerminal && term.IsTerminal(int(terminal.Fd()))
	if *email == "" || !*fromStdin && !onTerminal {
		return fmt.Errorf("%w: user create needs --email, and --password-stdin when standard input is not a terminal", errUsage)
	}
	cfg, err := loadConfig(fs, values, getenv)
	if err != nil {
		return err
	}
	var password string
	if *fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read password: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	} else if password, err = askPassword(terminal, stderr); err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, stderr, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	if _, err := a.store.Migrate(ctx); err != nil {
		return err
	}
	u, err := a.auth.CreateUser(ctx, *email, *name, password)
	if err != nil {
		return describe(err)
	}
	if *verified {
		if err := a.auth.MarkEmailVerified(ctx, u.ID); err != nil {
			return describe(err)
		}
	}
	fmt.Fprintf(stdout, "created user %s (%s)\n", u.Email, u.ID)
	return nil
}

func userDisable(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return userAction(ctx, args, getenv, stdout, stderr, "disable", "Disables an account and signs out every one of its devices.",
		func(svc *auth.Service, ctx context.Context, email string) (string, error) {
			return "disabled " + email + " and signed out all of its devices", svc.DisableUser(ctx, email)
		})
}

func userSignOut(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return userAction(ctx, args, getenv, stdout, stderr, "signout", "Signs an account out of every device without disabling it.",
		func(svc *auth.Service, ctx context.Context, email string) (string, error) {
			return "signed " + email + " out of every device", svc.SignOutUser(ctx, email)
		})
}

// userMFA is "user mfa reset": it removes every second factor, passkey and recovery code of an
// account, for a person who lost their phone and their codes; the password alone signs in again.
func userMFA(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "reset" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			fmt.Fprintln(stdout, "Usage:\n  gatehouse user mfa reset --email E")
			return nil
		}
		return fmt.Errorf("%w: user mfa needs reset (gatehouse user mfa reset --email E)", errUsage)
	}
	return userAction(ctx, args[1:], getenv, stdout, stderr, "mfa reset",
		"Removes every second factor, passkey and recovery code of an account, for a person who lost their phone and their codes (verify who they are first, as at sign-up). It is recorded as a security event; the password alone signs in again.",
		func(svc *auth.Service, ctx context.Context, email string) (string, error) {
			removed, err := svc.ResetSecondFactors(ctx, email)
			return fmt.Sprintf("removed every second factor of %s (%d removed)", email, removed), err
		})
}

// userAction is a user command that takes --email and applies one service method to it; the
// method returns the line to print (given the normalised address).
func userAction(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer,
	name, summary string, action func(svc *auth.Service, ctx context.Context, email string) (string, error)) error {
	fs, values := newFlagSet("user "+name, summary)
	email := fs.String("email", "", "the account's email (required)")
	if err := fs.Parse(args); err != nil {
		return usageError(fs, err, stdout)
	}
	if *email == "" {
		return fmt.Errorf("%w: user %s needs --email", errUsage, name)
	}
	cfg, err := loadConfig(fs, values, getenv)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, stderr, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	done, err := action(a.auth, ctx, strings.ToLower(strings.TrimSpace(*email)))
	if err != nil {
		return describe(err)
	}
	_, err = fmt.Fprintln(stdout, done)
	return err
}

// describe turns domain errors into one line for people.
func describe(err error) error {
	var v *auth.ValidationError
	switch {
	case errors.As(err, &v):
		return fmt.Errorf("%s: %s", strings.ReplaceAll(v.Field, "_", " "), v.Message)
	case errors.Is(err, auth.ErrEmailTaken):
		return errors.New("a user with that email already exists")
	case errors.Is(err, auth.ErrNotFound):
		return errors.New("no user with that email")
	}
	return err
}

// askPassword reads a new password twice from the terminal without echoing it.
func askPassword(terminal *os.File, prompt io.Writer) (string, error) {
	read := func(label string) (string, error) {
		fmt.Fprint(prompt, label)
		b, err := term.ReadPassword(int(terminal.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	first, err := read("Password for the new account: ")
	if err != nil {
		return "", err
	}
	again, err := read("The same password again: ")
	if err != nil {
		return "", err
	}
	if first != again {
		return "", errors.New("the two passwords differ; nothing was created")
	}
	return first, nil
}
