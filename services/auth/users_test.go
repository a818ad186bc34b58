package auth_test

import (
	"errors"
	"testing"

	"gatehouse/models/testdb"
	"gatehouse/services/auth"
)

// A new account's first security event is "account created", at the moment it was created; a
// refused duplicate sign-up adds nothing to the existing account's activity.
func TestCreateUserRecordsAccountCreated(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		e := newEnv(t, db)
		u, err := e.svc.CreateUser(e.ctx, "ann@example.com", "Ann", testPassword)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.CreateUser(e.ctx, "ANN@example.com", "Ann again", testPassword); !errors.Is(err, auth.ErrEmailTaken) {
			t.Fatalf("duplicate sign-up: %v, want ErrEmailTaken", err)
		}
		events, err := e.svc.Events(e.ctx, u.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 1 || events[0].Kind != auth.EventAccountCreated || !events[0].At.Equal(e.clock.Now()) {
			t.Fatalf("events %+v, want one account_created at %v", events, e.clock.Now())
		}
	})
}
