package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMetricsOnTheirOwnAddress: with GATEHOUSE_METRICS_ADDR, /metrics answers there and not on the
// portal's public address; without it, on the portal's address.
func TestMetricsOnTheirOwnAddress(t *testing.T) {
	get := func(t *testing.T, srv *server, url string) (int, string) {
		t.Helper()
		res, err := srv.client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	t.Run("separate address", func(t *testing.T) {
		metricsAddr := freeAddr(t)
		srv := startServer(t, "", map[string]string{"GATEHOUSE_METRICS_ADDR": metricsAddr})
		if code, _ := get(t, srv, srv.URL+"/metrics"); code != http.StatusNotFound {
			t.Errorf("/metrics on the portal's address: %d, want 404", code)
		}
		var code int
		var body string
		eventually(t, 10*time.Second, "metrics answer on their address", func() (bool, string) {
			res, err := srv.client.Get("http://" + metricsAddr + "/metrics")
			if err != nil {
				return false, err.Error()
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			code, body = res.StatusCode, string(b)
			return true, ""
		})
		if code != http.StatusOK || !strings.Contains(body, "gatehouse_") {
			t.Errorf("/metrics on %s: %d %.200s", metricsAddr, code, body)
		}
		if code, _ := get(t, srv, "http://"+metricsAddr+"/devices"); code != http.StatusNotFound {
			t.Errorf("the metrics address serves /devices: %d", code)
		}
	})
	t.Run("default: on the portal's address", func(t *testing.T) {
		srv := startServer(t, "", nil)
		if code, body := get(t, srv, srv.URL+"/metrics"); code != http.StatusOK || !strings.Contains(body, "gatehouse_") {
			t.Errorf("/metrics: %d %.200s", code, body)
		}
	})
}

// TestPlainHTTPBaseURLIsExplained: a base URL on plain http at an address other than localhost
// makes every cookie Secure; serve says so at start and a form's 403 explains it.
func TestPlainHTTPBaseURLIsExplained(t *testing.T) {
	addr := freeAddr(t)
	srv := startServer(t, "", map[string]string{"GATEHOUSE_ADDR": addr, "GATEHOUSE_BASE_URL": "http://portal.internal.test:8080"})
	line := srv.waitForLog(t, "GATEHOUSE_BASE_URL is plain http at an address other than localhost", 10*time.Second)
	if !strings.Contains(line, "https") {
		t.Errorf("start log line %q does not say what to do", line)
	}
	res, err := srv.client.Post(srv.URL+"/login", "application/x-www-form-urlencoded", strings.NewReader("email=a%40example.com&password=x"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "plain http") {
		t.Errorf("a form without cookies: %d %.300s", res.StatusCode, body)
	}
}
