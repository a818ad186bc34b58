package ratelimit_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/services/ratelimit"
)

// TestKeysAreBoundedAndNormalised: a key is small whatever was sent, the same for one email
// written differently, and keeps no raw email.
func TestKeysAreBoundedAndNormalised(t *testing.T) {
	huge := strings.Repeat("a", 60<<10) + "@example.com"
	if k := ratelimit.Key("login-account", huge); len(k) > 64 || strings.Contains(k, "aaaa") {
		t.Fatalf("key of a 60 KB email: %d bytes %q", len(k), k)
	}
	if ratelimit.Key("a", " Ann@Example.COM ") != ratelimit.Key("a", "ann@example.com") {
		t.Fatal("one email written two ways has two counters")
	}
	if ratelimit.Key("a", "ann@example.com") == ratelimit.Key("b", "ann@example.com") {
		t.Fatal("kinds share a counter")
	}
	if k := ratelimit.Key("a", "ann@example.com"); strings.Contains(k, "ann") {
		t.Fatalf("key %q holds the email", k)
	}
}

// TestIPv6CountsByNetwork: the addresses of one /64 share a counter; IPv4 counts by address.
func TestIPv6CountsByNetwork(t *testing.T) {
	same := [][2]string{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
	}
	for _, p := range same {
		if ratelimit.IPKey("ip", p[0]) != ratelimit.IPKey("ip", p[1]) {
			t.Fatalf("%s and %s count apart", p[0], p[1])
		}
	}
	differ := [][2]string{{"2001:db8:1:2::1", "2001:db8:1:3::1"}, {"192.0.2.1", "192.0.2.2"}}
	for _, p := range differ {
		if ratelimit.IPKey("ip", p[0]) == ratelimit.IPKey("ip", p[1]) {
			t.Fatalf("%s and %s share a counter", p[0], p[1])
		}
	}
	if k := ratelimit.IPKey("ip", strings.Repeat("x", 10000)); len(k) > 64 {
		t.Fatalf("key of a garbage address: %d bytes", len(k))
	}
}

// TestUndoGivesBackOneAttempt: a reserved attempt given back can be used again, and never below zero.
func TestUndoGivesBackOneAttempt(t *testing.T) {
	now := time.Unix(1000, 0)
	l := ratelimit.NewMemory(func() time.Time { return now })
	ctx := context.Background()
	r := ratelimit.Rate{N: 2, Per: time.Minute}
	l.Undo(ctx, "k") // nothing to give back
	for range 2 {
		l.Hit(ctx, "k", r)
	}
	if d, _ := l.Hit(ctx, "k", r); d.Allowed {
		t.Fatal("third hit allowed")
	}
	l.Undo(ctx, "k")
	l.Undo(ctx, "k")
	if d, _ := l.Hit(ctx, "k", r); !d.Allowed {
		t.Fatal("a given-back attempt cannot be used again")
	}
}

// TestConcurrentHitsAllowAtMostTheLimit: reserving is atomic, so 50 racing hits get N through.
func TestConcurrentHitsAllowAtMostTheLimit(t *testing.T) {
	l := ratelimit.NewMemory(time.Now)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed int
	)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d, _ := l.Hit(context.Background(), "k", ratelimit.Rate{N: 10, Per: time.Minute}); d.Allowed {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if allowed != 10 {
		t.Fatalf("%d of 50 concurrent hits allowed, want 10", allowed)
	}
}

// TestFallbackNeverFailsOpen: with Redis unreachable the limits hold per instance, and the
// switch is logged.
func TestFallbackNeverFailsOpen(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer dead.Close()
	var logs bytes.Buffer
	l := ratelimit.NewFallback(ratelimit.NewRedis(dead), ratelimit.NewMemory(time.Now), slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := context.Background()
	r := ratelimit.Rate{N: 3, Per: time.Minute}
	for i := range 3 {
		if d, err := l.Hit(ctx, "k", r); err != nil || !d.Allowed {
			t.Fatalf("hit %d: %+v %v", i, d, err)
		}
	}
	if d, _ := l.Hit(ctx, "k", r); d.Allowed {
		t.Fatal("the fourth hit was allowed while Redis was down: the limiter failed open")
	}
	if !l.Degraded() || strings.Count(logs.String(), "unreachable") != 1 {
		t.Fatalf("degraded %v; log: %s", l.Degraded(), logs.String())
	}
}

// TestRedisUndo: Undo takes back a counted attempt in Redis, and never goes below zero.
func TestRedisUndo(t *testing.T) {
	url := os.Getenv("GATEHOUSE_TEST_REDIS")
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("GATEHOUSE_TEST_REDIS is not set, and CI=true requires the Redis tests")
		}
		t.Skip("GATEHOUSE_TEST_REDIS is not set")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	defer client.Close()
	l := ratelimit.NewRedis(client)
	ctx := context.Background()
	r := ratelimit.Rate{N: 1, Per: time.Minute}
	key := "undo:" + time.Now().Format("150405.000000000")
	if err := l.Undo(ctx, key); err != nil {
		t.Fatal(err)
	}
	l.Hit(ctx, key, r)
	l.Undo(ctx, key)
	l.Undo(ctx, key) // nothing left to give back
	if d, _ := l.Hit(ctx, key, r); !d.Allowed {
		t.Fatal("a given-back attempt cannot be used again")
	}
	if d, _ := l.Hit(ctx, key, r); d.Allowed {
		t.Fatal("undo went below zero: two attempts fit a limit of one")
	}
}
