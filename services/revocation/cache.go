// Package revocation caches what verifying an access token needs to know (the user's
// token_version and disabled flag, the session's liveness) so that bearer requests need no
// database round trip, and invalidates it on every change, on every instance: at once on the
// instance that made the change, through PostgreSQL LISTEN/NOTIFY or Redis pub/sub elsewhere, and
// through PRAGMA data_version between processes sharing an SQLite file.
package revocation

import (
	"context"
	"sync"
	"time"

	"gatehouse/models"
)

// Source loads revocation state from the database.
type Source interface {
	AccessStateOf(ctx context.Context, sessionID string) (*models.AccessState, error)
}

// Cache is a read-through cache of access states. While its change feed is down it answers
// from the database only, so a lost notification can never leave a revoked token accepted.
type Cache struct {
	source Source
	maxAge time.Duration
	now    func() time.Time

	mu         sync.Mutex
	entries    map[string]entry    // by session id
	byUser     map[string][]string // user id → cached session ids
	generation uint64              // bumped by every invalidation; fills that raced one are dropped
	live       bool                // the change feed is connected
}

type entry struct {
	state  models.AccessState
	loaded time.Time
}

// New makes a cache over source. Entries are also dropped after maxAge, as a backstop.
func New(source Source, maxAge time.Duration) *Cache {
	return &Cache{source: source, maxAge: maxAge, now: time.Now, entries: map[string]entry{}, byUser: map[string][]string{}}
}

// AccessStateOf answers from memory when it can, else from the source.
func (c *Cache) AccessStateOf(ctx context.Context, sessionID string) (*models.AccessState, error) {
	c.mu.Lock()
	if !c.live {
		c.mu.Unlock()
		return c.source.AccessStateOf(ctx, sessionID)
	}
	if e, ok := c.entries[sessionID]; ok && c.now().Sub(e.loaded) < c.maxAge {
		c.mu.Unlock()
		state := e.state
		return &state, nil
	}
	gen := c.generation
	c.mu.Unlock()

	state, err := c.source.AccessStateOf(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.live && c.generation == gen {
		c.entries[sessionID] = entry{state: *state, loaded: c.now()}
		c.byUser[state.UserID] = append(c.byUser[state.UserID], sessionID)
	}
	c.mu.Unlock()
	return state, nil
}

// InvalidateUser drops every cached session of a user (token_version or disabled changed).
func (c *Cache) InvalidateUser(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
	for _, sid := range c.byUser[userID] {
		delete(c.entries, sid)
	}
	delete(c.byUser, userID)
}

// InvalidateSession drops one cached session.
func (c *Cache) InvalidateSession(sessionID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
	delete(c.entries, sessionID)
}

// Flush drops everything (another process committed something we cannot name).
func (c *Cache) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
}

func (c *Cache) flushLocked() {
	c.generation++
	c.entries = map[string]entry{}
	c.byUser = map[string][]string{}
}

// SetLive turns caching on when the change feed connects and off (flushing) when it drops.
func (c *Cache) SetLive(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
	c.live = live
}

// Live tells whether the cache is answering from memory.
func (c *Cache) Live() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

// Size is the number of cached sessions.
func (c *Cache) Size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// apply handles one message of the change feed: "u:<user id>" or "s:<session id>".
func (c *Cache) apply(msg string) {
	if len(msg) < 3 || msg[1] != ':' {
		c.Flush()
		return
	}
	switch msg[0] {
	case 'u':
		c.InvalidateUser(msg[2:])
	case 's':
		c.InvalidateSession(msg[2:])
	default:
		c.Flush()
	}
}
