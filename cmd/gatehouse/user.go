package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

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
	fs, values := newFlagSet("user create", "Creates an account; the password is read from standard input.")
	email := fs.String("email", "", "the account's email (required)")
	name := fs.String("name", "", "display name")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input (required)")
	verified := fs.Bool("verified", false, "mark the address verified (the operator vouches for it): no verification link is needed")
	if err := fs.Parse(args); err != nil {
		return usageError(fs, err, stdout)
	}
	if *email == "" || !*fromStdin {
		return fmt.Errorf("%w: user create needs --email and --password-stdin", errUsage)
	}
	cfg, err := loadConfig(fs, values, getenv)
	if err != nil {
		return err
	}
	password, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	password = strings.TrimRight(password, "\r\n")
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
		"disabled %s and signed out all of its devices\n", (*auth.Service).DisableUser)
}

func userSignOut(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return userAction(ctx, args, getenv, stdout, stderr, "signout", "Signs an account out of every device without disabling it.",
		"signed %s out of every device\n", (*auth.Service).SignOutUser)
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
	removed := 0
	reset := func(svc *auth.Service, ctx context.Context, email string) error {
		var err error
		removed, err = svc.ResetSecondFactors(ctx, email)
		return err
	}
	var out strings.Builder
	err := userAction(ctx, args[1:], getenv, &out, stderr, "mfa reset",
		"Removes every second factor, passkey and recovery code of an account (recorded as a security event); its password alone signs in again.",
		"removed every second factor of %s\n", reset)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s (%d removed)\n", strings.TrimRight(out.String(), "\n"), removed)
	return err
}

// userAction is a user command that takes --email and applies one service method to it.
func userAction(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer,
	name, summary, done string, action func(*auth.Service, context.Context, string) error) error {
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
	if err := action(a.auth, ctx, *email); err != nil {
		return describe(err)
	}
	fmt.Fprintf(stdout, done, strings.ToLower(strings.TrimSpace(*email)))
	return nil
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
