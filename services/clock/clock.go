// Package clock holds a clock that moves only when told to. Gatehouse's services take their time
// from an injected `now func() time.Time`; tests (and tools that replay or simulate time) pass a
// Manual clock's Now and move time with Advance or Set instead of sleeping.
package clock

import (
	"sync"
	"time"
)

// Manual is a clock that stands still until it is moved. It is safe for concurrent use: services
// read it from many goroutines while a test moves it. The zero value reads the zero time; NewManual
// starts it elsewhere.
type Manual struct {
	mu  sync.Mutex
	now time.Time
}

// NewManual returns a clock that reads start until it is moved.
func NewManual(start time.Time) *Manual { return &Manual{now: start} }

// Now returns the clock's time. Its method value (c.Now) is the `now func() time.Time` that
// services take.
func (c *Manual) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d (backwards when d is negative) and returns the new time.
func (c *Manual) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set puts the clock at t, earlier or later than now.
func (c *Manual) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
