package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gatehouse/models"
)

// Activity is one page of a user's security activity, newest first.
type Activity struct {
	Events []Event
	// Older is the cursor of the next, older page (pass it as before), or 0 when this is the last.
	Older int64
}

// ActivityPage reads size events of the user's history older than the event before (0: from the
// newest).
func (s *Service) ActivityPage(ctx context.Context, userID string, before int64, size int) (*Activity, error) {
	rows, err := s.store.EventsBefore(ctx, userID, before, size+1)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	page := &Activity{}
	if len(rows) > size {
		rows = rows[:size]
		page.Older = rows[size-1].ID
	}
	for i := range rows {
		page.Events = append(page.Events, eventOf(&rows[i]))
	}
	return page, nil
}

// SessionDetails is one device session with its own security events.
type SessionDetails struct {
	Session
	RevokedAt *time.Time // nil while it is signed in
	Events    []Event
}

// SessionDetailsOf reads one of the user's sessions, live or not, with its newest events;
// ErrNotFound for an unknown id or another user's session.
func (s *Service) SessionDetailsOf(ctx context.Context, userID, sessionID string) (*SessionDetails, error) {
	if !wellFormedID(sessionID) {
		return nil, ErrNotFound
	}
	d, err := s.store.SessionByID(ctx, sessionID)
	if errors.Is(err, models.ErrNotFound) || err == nil && d.UserID != userID {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	rows, err := s.store.SessionEvents(ctx, userID, sessionID, 50)
	if err != nil {
		return nil, fmt.Errorf("read session events: %w", err)
	}
	details := &SessionDetails{Session: sessionOf(d), RevokedAt: d.RevokedAt}
	for i := range rows {
		details.Events = append(details.Events, eventOf(&rows[i]))
	}
	return details, nil
}
