package models_test

import (
	"context"
	"testing"
	"time"

	"gatehouse/models"
	"gatehouse/models/testdb"
)

// On SQLite a read outside a transaction goes to a read-only connection: it does not wait for
// the one writer, even while a transaction holds it, and it sees the last commit, never the
// writer's uncommitted rows; the commit is seen at once afterwards.
func TestSQLiteReadsDoNotWaitForTheWriter(t *testing.T) {
	db := testdb.SQLite(t)
	createUser(t, db, "alice")
	// Only a deadlock could make a read wait this long: before the read connections, a read
	// here waited for the writer, which waits for the read.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err := db.Store.InTx(ctx, func(tx *models.Store) error {
		if err := tx.SetDisplayName(ctx, "alice", "Alice Uncommitted", now); err != nil {
			return err
		}
		u, err := db.Store.UserByID(ctx, "alice")
		if err != nil {
			t.Fatalf("read beside the writer's transaction: %v", err)
		}
		if u.DisplayName != "alice" {
			t.Errorf("a read beside the transaction saw display name %q, want the committed %q", u.DisplayName, "alice")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	u, err := db.Store.UserByID(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.DisplayName != "Alice Uncommitted" {
		t.Errorf("after the commit a read saw %q, want %q", u.DisplayName, "Alice Uncommitted")
	}
}

// The read connections refuse writes: a write that reached one by mistake would fail loudly
// rather than race the writer.
func TestSQLiteReadConnectionsAreReadOnly(t *testing.T) {
	db := testdb.SQLite(t)
	createUser(t, db, "alice")
	err := models.ReadConnections(db.Store).Exec(`UPDATE users SET display_name = 'x' WHERE id = 'alice'`).Error
	if err == nil {
		t.Fatal("a write on a read connection succeeded")
	}
}
