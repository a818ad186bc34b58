package ratelimit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"gatehouse/services/ratelimit"
)

// FuzzParseRate: a rate string (GATEHOUSE_LOGIN_LIMIT_*) either fails with an error or gives a
// count of at least 1 per positive window, which prints back to a string that parses to the same
// rate, and which the in-memory limiter can use: the first hit of a fresh key is allowed.
//
//	go test -run '^$' -fuzz '^FuzzParseRate$' -fuzztime 15s ./services/ratelimit/
func FuzzParseRate(f *testing.F) {
	for _, seed := range []string{
		"10/15m", "100/15m", "1/1s", "1/1ns", "5/1h30m", "+5/1m", "05/1m", "10/15m0s", "9223372036854775807/2562047h47m16s",
		"9223372036854775808/1m", "10/9999999h", "", "/", "10", "10/", "/15m", "0/1m", "-1/1m", "1/-1m", "1/0s", "1/0",
		" 10/15m", "10/15m ", "10 /15m", "10/ 15m", "10/15", "10/15m/2", "1e3/1m", "0x10/1m", "1_000/1m", "١٠/15m", "10/１５m",
		"10/15µs", "10/15us", "10/.5s", "10/1.5h", "10/" + strings.Repeat("9", 40) + "h",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ratelimit.ParseRate(s)
		if err != nil {
			if r != (ratelimit.Rate{}) {
				t.Fatalf("ParseRate(%q) failed but returned %+v", s, r)
			}
			return
		}
		if r.N < 1 || r.Per <= 0 {
			t.Fatalf("ParseRate(%q) = %+v: not at least 1 per positive window", s, r)
		}
		again, err := ratelimit.ParseRate(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseRate(%q) = %+v prints as %q, which parses to %+v, %v", s, r, r.String(), again, err)
		}
		now := time.Unix(1_700_000_000, 0)
		d, err := ratelimit.NewMemory(func() time.Time { return now }).Hit(context.Background(), "k", r)
		if err != nil || !d.Allowed {
			t.Fatalf("the first hit under %+v was refused: %+v, %v", r, d, err)
		}
	})
}
