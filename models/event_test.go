package models_test

import (
	"slices"
	"testing"
	"time"

	"gatehouse/models"
	"gatehouse/models/testdb"
)

// The security-event contract, on every database.

func TestRecentEvents(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		createUser(t, db, "alice")
		createUser(t, db, "bob")
		// Recorded out of time order, and two at the same instant: newest first is by created_at,
		// then by id (the later record first).
		record := []struct {
			user string
			at   time.Duration
		}{{"alice", -time.Hour}, {"alice", -3 * time.Hour}, {"alice", -2 * time.Hour}, {"alice", -time.Hour}, {"bob", 0}}
		var ids []int64
		for _, r := range record {
			e := &models.SecurityEvent{UserID: r.user, SessionID: "s-1", DeviceName: "Firefox on Linux", Kind: models.EventSignedIn, IP: "192.0.2.1", CreatedAt: now.Add(r.at)}
			if err := db.Store.RecordEvent(ctx, e); err != nil {
				t.Fatalf("record event: %v", err)
			}
			if len(ids) > 0 && e.ID <= ids[len(ids)-1] {
				t.Errorf("event ids: %d after %d, want increasing", e.ID, ids[len(ids)-1])
			}
			ids = append(ids, e.ID)
		}

		for _, c := range []struct {
			limit int
			want  []int64
		}{
			{10, []int64{ids[3], ids[0], ids[2], ids[1]}},
			{2, []int64{ids[3], ids[0]}},
		} {
			events, err := db.Store.RecentEvents(ctx, "alice", c.limit)
			var got []int64
			for _, e := range events {
				got = append(got, e.ID)
			}
			if err != nil || !slices.Equal(got, c.want) {
				t.Errorf("RecentEvents(alice, %d): %v, %v; want %v", c.limit, got, err, c.want)
			}
		}
		events, err := db.Store.RecentEvents(ctx, "alice", 1)
		if err != nil || len(events) != 1 {
			t.Fatalf("RecentEvents(alice, 1): %v, %v", events, err)
		}
		if e := events[0]; e.UserID != "alice" || e.Kind != models.EventSignedIn || e.IP != "192.0.2.1" || e.DeviceName != "Firefox on Linux" || !e.CreatedAt.Equal(now.Add(-time.Hour)) {
			t.Errorf("stored event: %+v", e)
		}
		if events, err := db.Store.RecentEvents(ctx, "carol", 10); err != nil || len(events) != 0 {
			t.Errorf("RecentEvents(carol): %v, %v; want none", events, err)
		}
	})
}
