package metrics_test

import (
	"context"
	"database/sql"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/metrics"
)

func TestMetricsAreExposedWithTheGatehousePrefix(t *testing.T) {
	m := metrics.New(func() sql.DBStats { return sql.DBStats{OpenConnections: 3} },
		func(context.Context) (int64, error) { return 7, nil }, func() bool { return true })
	m.RefreshOutcome("ok")
	m.RefreshOutcome("reused")
	m.LoginOutcome("invalid_credentials")
	m.ObserveRequest("/auth/refresh", "POST", 200, 3*time.Millisecond)

	app := fiber.New()
	app.Get("/metrics", m.Handler())
	res, err := app.Test(httptest.NewRequest("GET", "/metrics", nil))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	text := string(body)
	for _, want := range []string{
		`gatehouse_refresh_total{result="ok"} 1`,
		`gatehouse_refresh_total{result="reused"} 1`,
		`gatehouse_refresh_total{result="grace_retry"} 0`,
		`gatehouse_token_reuse_detected_total 1`,
		`gatehouse_login_total{result="invalid_credentials"} 1`,
		`gatehouse_http_request_duration_seconds_count{code="200",method="POST",route="/auth/refresh"} 1`,
		`gatehouse_live_sessions 7`,
		`gatehouse_db_open_connections 3`,
		`gatehouse_revocation_cache_live 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
