package auth_test

import (
	"errors"
	"strings"
	"testing"

	"gatehouse/models/testdb"
	"gatehouse/services/auth"
)

// fieldErrors is every field problem of err as "field: message", in order.
func fieldErrors(err error) []string {
	var out []string
	for _, v := range auth.FieldErrors(err) {
		out = append(out, v.Field+": "+v.Message)
	}
	return out
}

func wantFieldErrors(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if got := fieldErrors(err); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: field errors\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A form's problems come all at once, in the form's order; a caller that reports one error
// (the JSON API, the command line) finds the first with errors.As.
func TestCheckSignUpReportsEveryProblem(t *testing.T) {
	for _, c := range []struct {
		name                            string
		email, display, password, again string
		want                            []string
	}{
		{"an empty form", "", "", "", "", []string{
			"email: Enter your email address.",
			"password: Choose a password of at least 10 characters.",
			"password_confirm: Type the password again.",
		}},
		{"everything wrong", "ann-at-example", strings.Repeat("n", 65), "short", "shorter", []string{
			"email: Enter a valid email address, like name@example.com.",
			"display_name: Use at most 64 characters.",
			"password: Use at least 10 characters.",
			"password_confirm: The passwords do not match.",
		}},
		{"a control character in the name", "ann@example.com", "Ann\u202e", testPassword, testPassword, []string{
			"display_name: Remove the control and text-direction characters.",
		}},
		{"confirmation differs", "ann@example.com", "", testPassword, testPassword + "!", []string{
			"password_confirm: The passwords do not match.",
		}},
		{"all fine, no display name", " Ann@Example.com ", "", testPassword, testPassword, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := auth.CheckSignUp(c.email, c.display, c.password, c.again)
			wantFieldErrors(t, "CheckSignUp", err, c.want...)
			if c.want == nil {
				if err != nil {
					t.Fatalf("CheckSignUp = %v, want nil", err)
				}
				return
			}
			var first *auth.ValidationError
			if !errors.As(err, &first) || first.Field+": "+first.Message != c.want[0] {
				t.Errorf("errors.As finds %+v, want the first problem %q", first, c.want[0])
			}
		})
	}
}

// CreateUser (the sign-up, the command line) reports every problem of its fields at once and
// stores nothing.
func TestCreateUserReportsEveryProblem(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		e := newEnv(t, db)
		_, err := e.svc.CreateUser(e.ctx, "", "Ann\x00", "")
		wantFieldErrors(t, "CreateUser", err,
			"email: Enter your email address.",
			"display_name: Remove the control and text-direction characters.",
			"password: Choose a password of at least 10 characters.")
		if n := db.Count(t, "SELECT COUNT(*) FROM users"); n != 0 {
			t.Errorf("%d users stored", n)
		}
	})
}

// The change-password form: what can be told without the current password is told all at once,
// before any hash is computed or attempt recorded; a wrong current password is told after.
func TestChangePasswordReportsEveryProblem(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		e := newEnv(t, db)
		e.user(t, "ann@example.com")
		p, err := e.svc.Verify(e.ctx, e.signIn(t, "ann@example.com", "laptop-0001").AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		failed := func() int64 {
			return db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'password_check_failed'")
		}
		before := failed()

		_, err = e.svc.ChangePassword(e.ctx, p, "", "", "", "192.0.2.1")
		wantFieldErrors(t, "an empty form", err,
			"current_password: Enter your current password.",
			"new_password: Choose a password of at least 10 characters.",
			"new_password_confirm: Type the password again.")
		_, err = e.svc.ChangePassword(e.ctx, p, "not my password", "short", "other", "192.0.2.1")
		wantFieldErrors(t, "a short new password, not confirmed", err,
			"new_password: Use at least 10 characters.",
			"new_password_confirm: The passwords do not match.")
		if n := failed(); n != before {
			t.Errorf("%d failed password checks recorded for forms refused before the check, want none", n-before)
		}

		_, err = e.svc.ChangePassword(e.ctx, p, "not my password", "a new password, long enough", "a new password, long enough", "192.0.2.1")
		wantFieldErrors(t, "a wrong current password", err, "current_password: That is not your current password.")
		if !errors.Is(err, auth.ErrWrongPassword) {
			t.Errorf("a wrong current password: %v, want it to wrap ErrWrongPassword", err)
		}
	})
}

func TestResetPasswordReportsBothProblems(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		e := newEnv(t, db)
		_, err := e.svc.ResetPassword(e.ctx, "not-a-token", "", "", auth.Client{DeviceID: "laptop-0001"})
		wantFieldErrors(t, "an empty form", err,
			"new_password: Choose a password of at least 10 characters.",
			"new_password_confirm: Type the password again.")
	})
}
