// Package metrics exposes Gatehouse's Prometheus metrics, all named gatehouse_*.
package metrics

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the registry and the instruments.
type Metrics struct {
	registry *prometheus.Registry
	refresh  *prometheus.CounterVec
	login    *prometheus.CounterVec
	reuse    prometheus.Counter
	requests *prometheus.HistogramVec
	render   *prometheus.CounterVec
}

// New registers every metric. liveSessions counts live device sessions at scrape time; pool
// gives the database pool statistics; cacheLive tells whether the revocation cache is on.
func New(pool func() sql.DBStats, liveSessions func(context.Context) (int64, error), cacheLive func() bool) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		refresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_refresh_total", Help: "Refresh attempts by result: ok, grace_retry, reused, expired, revoked, invalid.",
		}, []string{"result"}),
		login: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_login_total", Help: "Sign-in attempts by result: ok, invalid_credentials, busy, error.",
		}, []string{"result"}),
		reuse: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_token_reuse_detected_total", Help: "Replayed refresh tokens detected (each revoked a device session).",
		}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gatehouse_http_request_duration_seconds", Help: "HTTP request latency by route, method and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method", "code"}),
		render: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_page_render_seconds_total", Help: "Time spent rendering pages (templ), by route: beside the request latency's sum, the share of a page's time that is rendering.",
		}, []string{"route"}),
	}
	m.registry.MustRegister(m.refresh, m.login, m.reuse, m.requests, m.render,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"ok", "grace_retry", "reused", "expired", "revoked", "invalid"} {
		m.refresh.WithLabelValues(r)
	}
	if pool != nil {
		m.registry.MustRegister(poolCollector(pool))
	}
	if liveSessions != nil {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gatehouse_live_sessions", Help: "Device sessions not revoked and not expired (-1 when the database did not answer).",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := liveSessions(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		}))
	}
	if cacheLive != nil {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gatehouse_revocation_cache_live", Help: "1 while access-token revocation checks are answered from the invalidated cache, 0 while they read the database.",
		}, func() float64 {
			if cacheLive() {
				return 1
			}
			return 0
		}))
	}
	return m
}

// RefreshOutcome counts one refresh.
func (m *Metrics) RefreshOutcome(result string) {
	m.refresh.WithLabelValues(result).Inc()
	if result == "reused" {
		m.reuse.Inc()
	}
}

// LoginOutcome counts one sign-in.
func (m *Metrics) LoginOutcome(result string) { m.login.WithLabelValues(result).Inc() }

// Registerer is where other parts of Gatehouse (the mail sender) register their instruments, so
// that one scrape shows them all.
func (m *Metrics) Registerer() prometheus.Registerer { return m.registry }

// ObserveRequest records one HTTP request.
func (m *Metrics) ObserveRequest(route, method string, status int, elapsed time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Observe(elapsed.Seconds())
}

// ObserveRender adds the time one request of route spent rendering its page.
func (m *Metrics) ObserveRender(route string, elapsed time.Duration) {
	m.render.WithLabelValues(route).Add(elapsed.Seconds())
}

// RefreshBatches are the counters of refresh batching (GATEHOUSE_REFRESH_BATCH).
type RefreshBatches struct{ Batches, Shared, Members, Failed uint64 }

// CountRefreshBatches exposes refresh batching's counters, read from stats at each scrape.
func (m *Metrics) CountRefreshBatches(stats func() RefreshBatches) {
	counter := func(name, help string, value func(RefreshBatches) uint64) {
		m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(value(stats())) }))
	}
	counter("gatehouse_refresh_batches_total", "Refresh batches run, of one refresh or more.",
		func(b RefreshBatches) uint64 { return b.Batches })
	counter("gatehouse_refresh_batches_shared_total", "Refresh batches of more than one refresh: one commit for all of them.",
		func(b RefreshBatches) uint64 { return b.Shared })
	counter("gatehouse_refresh_batch_members_total", "Refreshes rotated through batches (members over batches is the mean batch size).",
		func(b RefreshBatches) uint64 { return b.Members })
	counter("gatehouse_refresh_batches_failed_total", "Shared refresh batches that failed; their refreshes were then rotated one by one.",
		func(b RefreshBatches) uint64 { return b.Failed })
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

type pool struct {
	stats                                 func() sql.DBStats
	open, inUse, idle, waitCount, waitDur *prometheus.Desc
}

func poolCollector(stats func() sql.DBStats) prometheus.Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("gatehouse_db_"+name, help, nil, nil)
	}
	return &pool{stats: stats,
		open: d("open_connections", "Open database connections."), inUse: d("in_use_connections", "Connections in use."),
		idle: d("idle_connections", "Idle connections."), waitCount: d("wait_total", "Times a request waited for a connection."),
		waitDur: d("wait_seconds_total", "Time spent waiting for a connection."),
	}
}

func (p *pool) Describe(ch chan<- *prometheus.Desc) {
	ch <- p.open
	ch <- p.inUse
	ch <- p.idle
	ch <- p.waitCount
	ch <- p.waitDur
}

func (p *pool) Collect(ch chan<- prometheus.Metric) {
	s := p.stats()
	ch <- prometheus.MustNewConstMetric(p.open, prometheus.GaugeValue, float64(s.OpenConnections))
	ch <- prometheus.MustNewConstMetric(p.inUse, prometheus.GaugeValue, float64(s.InUse))
	ch <- prometheus.MustNewConstMetric(p.idle, prometheus.GaugeValue, float64(s.Idle))
	ch <- prometheus.MustNewConstMetric(p.waitCount, prometheus.CounterValue, float64(s.WaitCount))
	ch <- prometheus.MustNewConstMetric(p.waitDur, prometheus.CounterValue, s.WaitDuration.Seconds())
}
