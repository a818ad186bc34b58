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

	mu      sync.Mutex
	entries map[string]entry               // by session id
	byUser  map[string]map[string]struct{} // user id → its cached session ids
	live    bool                           // the change feed is connected

	// A read from the source that raced an invalidation of its session or user must not be
	// cached. Every invalidation gets a generation number and a place in a ring of the recent
	// ones; a fill checks the ring for its own session and user, so invalidations of others do
	// not cost it. A flush, or more invalidations than the ring holds, drops the fill.
	generation uint64
	flushedAt  uint64
	recent     [recentInvalidations]invalidation
}

const recentInvalidations = 1024

type invalidation struct {
	userID, sessionID string // one of them; neither for a flush
}

type entry struct {
	state  models.AccessState
	loaded time.Time
}

// New makes a cache over source. Entries are also dropped after maxAge, as a backstop.
func New(source Source, maxAge time.Duration) *Cache {
	return &Cache{source: source, maxAge: maxAge, now: time.Now, entries: map[string]entry{}, byUser: map[string]map[string]struct{}{}}
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
	if c.live && !c.invalidatedSince(gen, state.UserID, sessionID) {
		c.entries[sessionID] = entry{state: *state, loaded: c.now()}
		if c.byUser[state.UserID] == nil {
			c.byUser[state.UserID] = map[string]struct{}{}
		}
		c.byUser[state.UserID][sessionID] = struct{}{}
	}
	c.mu.Unlock()
	return state, nil
}

// invalidatedSince tells whether the user or the session may have been invalidated after gen.
func (c *Cache) invalidatedSince(gen uint64, userID, sessionID string) bool {
	if c.flushedAt > gen || c.generation-gen >= recentInvalidations {
		return true
	}
	for g := gen + 1; g <= c.generation; g++ {
		inv := c.recent[g%recentInvalidations]
		if inv.userID == userID || inv.sessionID == sessionID {
			return true
		}
	}
	return false
}

func (c *Cache) record(inv invalidation) {
	c.generation++
	c.recent[c.generation%recentInvalidations] = inv
}

// InvalidateUser drops every cached session of a user (token_version or disabled changed).
func (c *Cache) InvalidateUser(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record(invalidation{userID: userID})
	for sid := range c.byUser[userID] {
		delete(c.entries, sid)
	}
	delete(c.byUser, userID)
}

// InvalidateSession drops one cached session.
func (c *Cache) InvalidateSession(sessionID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record(invalidation{sessionID: sessionID})
	if e, ok := c.entries[sessionID]; ok {
		delete(c.byUser[e.state.UserID], sessionID)
		delete(c.entries, sessionID)
	}
}

// Flush drops everything (another process committed something we cannot name).
func (c *Cache) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
}

func (c *Cache) flushLocked() {
	c.record(invalidation{})
	c.flushedAt = c.generation
	c.entries = map[string]entry{}
	c.byUser = map[string]map[string]struct{}{}
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
