package ratelimit_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/services/ratelimit"
)

func TestParseRate(t *testing.T) {
	good := map[string]ratelimit.Rate{"10/15m": {10, 15 * time.Minute}, "1/1s": {1, time.Second}}
	for in, want := range good {
		if got, err := ratelimit.ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "10", "0/1m", "-1/1m", "x/1m", "10/", "10/0s", "10/abc"} {
		if _, err := ratelimit.ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
}

func exercise(t *testing.T, l ratelimit.Limiter, advance func(time.Duration)) {
	ctx := context.Background()
	r := ratelimit.Rate{N: 3, Per: time.Minute}
	key := "k" + time.Now().Format("150405.000000000")
	for i := range 3 {
		if d, err := l.Hit(ctx, key, r); err != nil || !d.Allowed {
			t.Fatalf("hit %d: %+v %v", i, d, err)
		}
	}
	d, _ := l.Hit(ctx, key, r)
	if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > time.Minute {
		t.Fatalf("fourth hit: %+v", d)
	}
	if d, _ := l.Hit(ctx, "other"+key, r); !d.Allowed {
		t.Fatal("keys are independent")
	}
	advance(time.Minute + time.Second)
	if d, _ := l.Hit(ctx, key, r); !d.Allowed {
		t.Fatal("a new window allows again")
	}
}

func TestMemory(t *testing.T) {
	now := time.Unix(1000, 0)
	exercise(t, ratelimit.NewMemory(func() time.Time { return now }), func(d time.Duration) { now = now.Add(d) })
}

func TestRedis(t *testing.T) {
	url := os.Getenv("GATEHOUSE_TEST_REDIS")
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("GATEHOUSE_TEST_REDIS is not set, and CI=true requires the Redis tests")
		}
		t.Skip("GATEHOUSE_TEST_REDIS is not set: Redis limiter not tested")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	defer client.Close()
	l := ratelimit.NewRedis(client)
	// Redis keeps real time: shorten the window instead of moving a clock.
	ctx := context.Background()
	r := ratelimit.Rate{N: 2, Per: 300 * time.Millisecond}
	key := "test:" + time.Now().Format("150405.000000000")
	for i := range 2 {
		if d, err := l.Hit(ctx, key, r); err != nil || !d.Allowed {
			t.Fatalf("hit %d: %+v %v", i, d, err)
		}
	}
	if d, _ := l.Hit(ctx, key, r); d.Allowed {
		t.Fatal("third hit must be refused")
	}
	if d, _ := l.Hit(ctx, key, r); d.Allowed {
		t.Fatal("a hit past the limit must stay refused")
	}
	// A refused hit does not move the window's end (the expiry is set once, on the first hit).
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if d, _ := l.Hit(ctx, key, r); d.Allowed {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the window never ended")
}
