package metrics_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"math"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse/services/metrics"
)

// scrape is one GET /metrics as Prometheus reads it: each sample's value by its series as
// exposed (name{label="value",…}, labels in name order), and each metric's TYPE.
type scrape struct {
	samples map[string]string
	types   map[string]string
}

func scrapeOf(t *testing.T, m *metrics.Metrics) scrape {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	res := rec.Result()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want the text exposition format", ct)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	s := scrape{samples: map[string]string{}, types: map[string]string{}}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			s.types[name] = typ
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("not a sample line: %q", line)
		}
		s.samples[line[:i]] = line[i+1:]
	}
	return s
}

// want checks that the scrape has the series with exactly this value.
func (s scrape) want(t *testing.T, series, value string) {
	t.Helper()
	got, ok := s.samples[series]
	switch {
	case !ok:
		t.Errorf("no series %s in the scrape", series)
	case got != value:
		t.Errorf("%s %s, want %s", series, got, value)
	}
}

// wantNone checks that no series of the metric is exposed.
func (s scrape) wantNone(t *testing.T, name string) {
	t.Helper()
	for series := range s.samples {
		if series == name || strings.HasPrefix(series, name+"{") || strings.HasPrefix(series, name+"_") {
			t.Errorf("series %s exposed, want none of %s", series, name)
		}
	}
}

func pool(s sql.DBStats) func() sql.DBStats { return func() sql.DBStats { return s } }

func sessions(n int64, err error) func(context.Context) (int64, error) {
	return func(context.Context) (int64, error) { return n, err }
}

func cache(live bool) func() bool { return func() bool { return live } }

// Refresh outcomes are counted by result, and every result a dashboard may chart is there from
// the start, at 0. A reused token is also a detected replay, counted on its own; no other result is.
func TestRefreshOutcomesAreCountedByResult(t *testing.T) {
	m := metrics.New(nil, nil, nil)
	s := scrapeOf(t, m)
	for _, result := range []string{"ok", "grace_retry", "reused", "expired", "revoked", "invalid"} {
		s.want(t, `gatehouse_refresh_total{result="`+result+`"}`, "0")
	}
	s.want(t, "gatehouse_token_reuse_detected_total", "0")

	for _, result := range []string{"ok", "ok", "ok", "grace_retry", "expired", "revoked", "invalid", "reused", "reused"} {
		m.RefreshOutcome(result)
	}
	s = scrapeOf(t, m)
	s.want(t, `gatehouse_refresh_total{result="ok"}`, "3")
	s.want(t, `gatehouse_refresh_total{result="grace_retry"}`, "1")
	s.want(t, `gatehouse_refresh_total{result="expired"}`, "1")
	s.want(t, `gatehouse_refresh_total{result="revoked"}`, "1")
	s.want(t, `gatehouse_refresh_total{result="invalid"}`, "1")
	s.want(t, `gatehouse_refresh_total{result="reused"}`, "2")
	s.want(t, "gatehouse_token_reuse_detected_total", "2")
	if s.types["gatehouse_refresh_total"] != "counter" || s.types["gatehouse_token_reuse_detected_total"] != "counter" {
		t.Errorf("refresh and reuse metric types %q, %q, want counters",
			s.types["gatehouse_refresh_total"], s.types["gatehouse_token_reuse_detected_total"])
	}
}

// Sign-ins are counted by result; a result never seen has no series.
func TestLoginOutcomesAreCountedByResult(t *testing.T) {
	m := metrics.New(nil, nil, nil)
	m.LoginOutcome("invalid_credentials")
	m.LoginOutcome("ok")
	m.LoginOutcome("ok")
	s := scrapeOf(t, m)
	s.want(t, `gatehouse_login_total{result="ok"}`, "2")
	s.want(t, `gatehouse_login_total{result="invalid_credentials"}`, "1")
	if _, ok := s.samples[`gatehouse_login_total{result="busy"}`]; ok {
		t.Error(`gatehouse_login_total{result="busy"} exposed before any sign-in was busy`)
	}
	if got := s.types["gatehouse_login_total"]; got != "counter" {
		t.Errorf("gatehouse_login_total is a %q, want a counter", got)
	}
}

// Requests land in a latency histogram by route, method and status code, in seconds.
func TestRequestsAreObservedInSeconds(t *testing.T) {
	m := metrics.New(nil, nil, nil)
	m.ObserveRequest("/auth/refresh", "POST", 200, 3*time.Millisecond)
	m.ObserveRequest("/auth/refresh", "POST", 200, 30*time.Millisecond)
	m.ObserveRequest("/api/me", "GET", 401, 2*time.Second)
	s := scrapeOf(t, m)

	if got := s.types["gatehouse_http_request_duration_seconds"]; got != "histogram" {
		t.Errorf("gatehouse_http_request_duration_seconds is a %q, want a histogram", got)
	}
	refresh := `code="200",method="POST",route="/auth/refresh"`
	s.want(t, "gatehouse_http_request_duration_seconds_count{"+refresh+"}", "2")
	for le, n := range map[string]string{"0.001": "0", "0.0025": "0", "0.005": "1", "0.025": "1", "0.05": "2", "5": "2", "+Inf": "2"} {
		s.want(t, "gatehouse_http_request_duration_seconds_bucket{"+refresh+`,le="`+le+`"}`, n)
	}
	sum, err := strconv.ParseFloat(s.samples["gatehouse_http_request_duration_seconds_sum{"+refresh+"}"], 64)
	if err != nil || math.Abs(sum-0.033) > 1e-9 {
		t.Errorf("refresh latency sum %v (%v), want 0.033 seconds", sum, err)
	}

	me := `code="401",method="GET",route="/api/me"`
	s.want(t, "gatehouse_http_request_duration_seconds_count{"+me+"}", "1")
	s.want(t, "gatehouse_http_request_duration_seconds_sum{"+me+"}", "2")
	s.want(t, "gatehouse_http_request_duration_seconds_bucket{"+me+`,le="1"}`, "0")
	s.want(t, "gatehouse_http_request_duration_seconds_bucket{"+me+`,le="2.5"}`, "1")
}

// Rendering time is added up by route, in seconds, so that its share of the route's request time
// (the latency histogram's sum) can be read off two scrapes.
func TestPageRenderTimeIsAddedUpByRoute(t *testing.T) {
	m := metrics.New(nil, nil, nil)
	m.ObserveRender("/devices", 1500*time.Microsecond)
	m.ObserveRender("/devices", 500*time.Microsecond)
	m.ObserveRender("/account", 250*time.Millisecond)
	s := scrapeOf(t, m)
	if got := s.types["gatehouse_page_render_seconds_total"]; got != "counter" {
		t.Errorf("gatehouse_page_render_seconds_total is a %q, want a counter", got)
	}
	s.want(t, `gatehouse_page_render_seconds_total{route="/devices"}`, "0.002")
	s.want(t, `gatehouse_page_render_seconds_total{route="/account"}`, "0.25")
}

// At each scrape the gauges read the database pool, the live sessions and the revocation cache.
func TestGaugesReadTheirSourcesAtScrapeTime(t *testing.T) {
	stats := sql.DBStats{OpenConnections: 5, InUse: 3, Idle: 2, WaitCount: 4, WaitDuration: 1500 * time.Millisecond}
	s := scrapeOf(t, metrics.New(pool(stats), sessions(7, nil), cache(true)))
	s.want(t, "gatehouse_db_open_connections", "5")
	s.want(t, "gatehouse_db_in_use_connections", "3")
	s.want(t, "gatehouse_db_idle_connections", "2")
	s.want(t, "gatehouse_db_wait_total", "4")
	s.want(t, "gatehouse_db_wait_seconds_total", "1.5")
	s.want(t, "gatehouse_live_sessions", "7")
	s.want(t, "gatehouse_revocation_cache_live", "1")
	for name, typ := range map[string]string{
		"gatehouse_db_open_connections": "gauge", "gatehouse_db_wait_total": "counter",
		"gatehouse_db_wait_seconds_total": "counter", "gatehouse_live_sessions": "gauge",
		"gatehouse_revocation_cache_live": "gauge",
	} {
		if got := s.types[name]; got != typ {
			t.Errorf("%s is a %q, want a %s", name, got, typ)
		}
	}

	// A database that does not answer shows as -1 live sessions; a cache off its feed as 0.
	s = scrapeOf(t, metrics.New(pool(sql.DBStats{}), sessions(7, errors.New("connection refused")), cache(false)))
	s.want(t, "gatehouse_live_sessions", "-1")
	s.want(t, "gatehouse_revocation_cache_live", "0")
	s.want(t, "gatehouse_db_open_connections", "0")
}

// A source not given is not exposed, rather than exposed as a made-up 0.
func TestGaugesWithoutSourcesAreAbsent(t *testing.T) {
	s := scrapeOf(t, metrics.New(nil, nil, nil))
	s.wantNone(t, "gatehouse_db")
	s.wantNone(t, "gatehouse_live_sessions")
	s.wantNone(t, "gatehouse_revocation_cache_live")
}

// Everything Gatehouse adds is named gatehouse_*; the rest is the Go runtime and the process.
func TestEveryMetricIsPrefixed(t *testing.T) {
	s := scrapeOf(t, metrics.New(pool(sql.DBStats{}), sessions(0, nil), cache(true)))
	for name := range s.types {
		if !strings.HasPrefix(name, "gatehouse_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("metric %s is not named gatehouse_*", name)
		}
	}
	if s.types["go_goroutines"] == "" {
		t.Error("no go_goroutines: the Go runtime metrics are missing")
	}
}

// The refresh-batching counters are read from the service at each scrape.
func TestRefreshBatchCounters(t *testing.T) {
	m := metrics.New(nil, nil, nil)
	stats := metrics.RefreshBatches{Batches: 3, Shared: 2, Members: 9, Failed: 1}
	m.CountRefreshBatches(func() metrics.RefreshBatches { return stats })
	s := scrapeOf(t, m)
	s.want(t, "gatehouse_refresh_batches_total", "3")
	s.want(t, "gatehouse_refresh_batches_shared_total", "2")
	s.want(t, "gatehouse_refresh_batch_members_total", "9")
	s.want(t, "gatehouse_refresh_batches_failed_total", "1")
	stats.Members = 12
	scrapeOf(t, m).want(t, "gatehouse_refresh_batch_members_total", "12")
}
