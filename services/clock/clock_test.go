package clock_test

import (
	"sync"
	"testing"
	"time"

	"gatehouse/services/clock"
)

func TestManualMovesOnlyWhenTold(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := clock.NewManual(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now() = %v, want the start %v", got, start)
	}
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("the clock moved by itself: %v", got)
	}
	if got := c.Advance(90 * time.Minute); !got.Equal(start.Add(90 * time.Minute)) {
		t.Fatalf("Advance returned %v, want %v", got, start.Add(90*time.Minute))
	}
	if got := c.Now(); !got.Equal(start.Add(90 * time.Minute)) {
		t.Fatalf("after Advance: %v", got)
	}
	c.Set(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("after Set: %v, want %v", got, start)
	}
	var zero clock.Manual
	if !zero.Now().IsZero() {
		t.Fatal("the zero Manual must read the zero time")
	}
}

// TestManualIsSafeForConcurrentUse: run with -race; every advance counts once.
func TestManualIsSafeForConcurrentUse(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := clock.NewManual(start)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				c.Advance(time.Second)
				_ = c.Now()
			}
		}()
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(800*time.Second); !got.Equal(want) {
		t.Fatalf("after 800 concurrent one-second advances: %v, want %v", got, want)
	}
}
