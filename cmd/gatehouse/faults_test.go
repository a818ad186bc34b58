// Database faults. These tests take the shared PostgreSQL server away from everything else, so
// they run only with GATEHOUSE_FAULT_TESTS=1, alone and last: `make test-faults` runs
// `go test -run TestFault ./cmd/gatehouse/` with that setting and GATEHOUSE_TEST_POSTGRES.

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/models"
	"gatehouse/models/testdb"
)

// envFaultTests turns the fault tests on.
const envFaultTests = "GATEHOUSE_FAULT_TESTS"

// restartPostgres is how the tests restart the local cluster (as root, without systemd).
const restartPostgres = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main restart"

func faultTests(t *testing.T) {
	t.Helper()
	if os.Getenv(envFaultTests) != "1" {
		t.Skipf("set %s=1 to run the database fault tests (they restart the shared PostgreSQL server)", envFaultTests)
	}
	if os.Getenv(testdb.EnvPostgres) == "" {
		t.Fatalf("%s=1 needs %s", envFaultTests, testdb.EnvPostgres)
	}
}

// waitPostgresUp waits until PostgreSQL accepts connections again (pg_isready), and starts it if
// it is still down 30 s later: the server is shared, so it is brought back whatever happened to
// the test.
func waitPostgresUp(t *testing.T) {
	t.Helper()
	accepting := func() (bool, string) {
		out, err := exec.Command("pg_isready", "-d", testdb.PostgresURL(t)).CombinedOutput()
		return err == nil, strings.TrimSpace(string(out))
	}
	if waitUntil(30*time.Second, accepting) == nil {
		return
	}
	out, err := exec.Command("sh", "-c", strings.Replace(restartPostgres, " restart", " start", 1)).CombinedOutput()
	t.Logf("PostgreSQL still down 30s later; started it: %v %s", err, out)
	if err := waitUntil(90*time.Second, accepting); err != nil {
		t.Errorf("PostgreSQL is not accepting connections: %v", err)
	}
}

// forgetDeadConnections drops the idle connections of the test's own pool, which the restart
// killed, so that the checks below do not fail on them.
func forgetDeadConnections(t *testing.T, db *testdb.DB) {
	t.Helper()
	sqlDB, err := db.Store.SQL()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxIdleConns(0)
	sqlDB.SetMaxIdleConns(4)
}

// dropSchemaOf drops the schema a testdb PostgreSQL URL points at, through a new connection.
func dropSchemaOf(t *testing.T, databaseURL string) {
	t.Helper()
	u, err := url.Parse(databaseURL)
	if err != nil {
		return
	}
	schema := u.Query().Get("search_path")
	if !strings.HasPrefix(schema, "t_") {
		return
	}
	admin, err := models.Open(testdb.PostgresURL(t), models.Options{MaxOpenConns: 1})
	if err != nil {
		t.Logf("drop schema %s: %v", schema, err)
		return
	}
	defer admin.Close()
	if err := admin.DB().Exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE").Error; err != nil {
		t.Logf("drop schema %s: %v", schema, err)
	}
}

// refresher is one signed-in app that refreshes its token over and over, as a client that is
// never signed out would: after a 503 it presents the same token again.
type refresher struct {
	dev *device

	ok          int  // refreshes answered 200
	okAfter     int  // of which since the database came back
	unavailable int  // refreshes answered 503 unavailable
	retried     int  // 200s for a token that had been answered 503 before (token rule 2)
	retrying    bool // the last answer was 503: the next attempt presents the same token
	meOK, me503 int  // GET /api/me answers along the way
	failures    []string
}

// fleet runs the refreshers until stopped; mu guards every refresher's counters.
type fleet struct {
	mu        sync.Mutex
	recovered bool          // the database is back
	progress  chan struct{} // closed and replaced whenever a refresh was answered
	clients   []*refresher
	stopping  chan struct{}
	done      sync.WaitGroup
	stopOnce  sync.Once
}

func startFleet(t *testing.T, srv *server, devices []*device) *fleet {
	f := &fleet{stopping: make(chan struct{}), progress: make(chan struct{})}
	for _, d := range devices {
		w := &refresher{dev: d}
		f.clients = append(f.clients, w)
		f.done.Add(1)
		go func() {
			defer f.done.Done()
			for {
				select {
				case <-f.stopping:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if !f.step(t, srv, w) {
					return
				}
			}
		}()
	}
	t.Cleanup(f.stop)
	return f
}

func (f *fleet) stop() {
	f.stopOnce.Do(func() {
		close(f.stopping)
		f.done.Wait()
	})
}

func (f *fleet) markRecovered() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recovered = true
}

// await waits until has holds for every client still going (none of its answers was a failure),
// looking again at every answered refresh. It reports false when within passes first: a bound
// on the wait, not a measurement.
func (f *fleet) await(within time.Duration, has func(w *refresher) bool) bool {
	timeout := time.After(within)
	for {
		f.mu.Lock()
		all, progress := true, f.progress
		for _, w := range f.clients {
			all = all && (has(w) || len(w.failures) > 0)
		}
		f.mu.Unlock()
		if all {
			return true
		}
		select {
		case <-progress:
		case <-timeout:
			return false
		}
	}
}

// answered wakes await; f.mu is held.
func (f *fleet) answered() {
	close(f.progress)
	f.progress = make(chan struct{})
}

// step presents the client's token once, then now and then uses its access token; it reports
// whether to go on.
func (f *fleet) step(t *testing.T, srv *server, w *refresher) bool {
	d := f.device(w)
	r, err := srv.refresh(t, &d)
	goOn, checkMe := f.applyRefresh(w, r, err)
	if checkMe {
		d = f.device(w)
		me, err := srv.me(t, &d)
		f.applyMe(w, me, err)
	}
	return goOn
}

// device is a copy of the client's current tokens.
func (f *fleet) device(w *refresher) device {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *w.dev
}

// applyRefresh records a refresh answer: a 200 replaces the tokens, a 503 keeps them for a retry,
// anything else is a failure. It reports whether to go on and whether to try the access token.
func (f *fleet) applyRefresh(w *refresher, r reply, err error) (goOn, checkMe bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.answered()
	switch {
	case err != nil:
		w.failures = append(w.failures, fmt.Sprintf("refresh: %v", err))
		return true, false // the answer may be lost: present the same token again
	case r.Status == http.StatusServiceUnavailable && r.errorCode() == "unavailable" && r.Header.Get("Retry-After") != "":
		w.unavailable++
		w.retrying = true
		return true, false
	case r.Status != http.StatusOK:
		w.failures = append(w.failures, "refresh: "+r.String())
		return r.Status >= 500, false // after a 401 the client is signed out: nothing left to refresh
	}
	next, _ := r.cookie("gh_refresh")
	if next == "" || r.accessToken() == "" {
		w.failures = append(w.failures, "refresh 200 without a new token: "+r.String())
		return false, false
	}
	if w.retrying {
		w.retried++
		w.retrying = false
	}
	w.dev.Refresh, w.dev.Access = next, r.accessToken()
	w.ok++
	if f.recovered {
		w.okAfter++
	}
	return true, w.ok%5 == 0
}

// applyMe records a GET /api/me answer: 200, or 503 while the database is away.
func (f *fleet) applyMe(w *refresher, me reply, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case err == nil && me.Status == http.StatusOK:
		w.meOK++
	case err == nil && me.Status == http.StatusServiceUnavailable && me.errorCode() == "unavailable":
		w.me503++
	default:
		w.failures = append(w.failures, fmt.Sprintf("GET /api/me: %v %v", me, err))
	}
}

// probes polls /healthz and /readyz until stopped.
type probes struct {
	mu              sync.Mutex
	healthBad       []string // /healthz answers other than 200
	ready200        int
	ready503        int
	readyOther      []string
	stopping, ended chan struct{}
	stopOnce        sync.Once
}

func startProbes(t *testing.T, srv *server) *probes {
	p := &probes{stopping: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(p.ended)
		for {
			select {
			case <-p.stopping:
				return
			case <-time.After(50 * time.Millisecond):
			}
			h, herr := srv.do(t, "GET", "/healthz", "")
			r, rerr := srv.do(t, "GET", "/readyz", "")
			p.mu.Lock()
			if herr != nil || h.Status != http.StatusOK {
				p.healthBad = append(p.healthBad, fmt.Sprintf("%v %v", h, herr))
			}
			switch {
			case rerr == nil && r.Status == http.StatusOK:
				p.ready200++
			case rerr == nil && r.Status == http.StatusServiceUnavailable:
				p.ready503++
			default:
				p.readyOther = append(p.readyOther, fmt.Sprintf("%v %v", r, rerr))
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *probes) stop() {
	p.stopOnce.Do(func() {
		close(p.stopping)
		<-p.ended
	})
}

// TestFaultPostgresRestart restarts PostgreSQL under a server whose eight clients refresh
// continuously. While the database is away the process stays healthy (/healthz 200) but not
// ready (/readyz 503), and a refresh gets 503 unavailable: never a 500, never a 401 that would
// sign a client out. A client retrying the same token succeeds once the database is back; then
// every family has exactly one live token, the one its client holds, and every client works.
func TestFaultPostgresRestart(t *testing.T) {
	faultTests(t)
	db := testdb.Postgres(t)
	t.Cleanup(func() { // after the server has stopped, before testdb's own cleanup
		waitPostgresUp(t)
		dropSchemaOf(t, db.URL) // testdb's connection for it may have died with the restart
	})
	srv := startServer(t, db.URL, map[string]string{
		// The outage and the retry after it stay well inside the grace window, so that a refresh
		// committed just before its connection died converges on the same successor (rule 2).
		"GATEHOUSE_REFRESH_GRACE": "30s",
		// Each client refreshes every 20 ms, far past the per-session limit a real app needs.
		"GATEHOUSE_SESSION_LIMIT": "off",
	})
	if r := srv.gatehouse(t, password+"\n", "user", "create", "--email", "ivy@example.com", "--password-stdin"); r.code != 0 {
		t.Fatalf("user create:\n%s", r)
	}
	var devices []*device
	for i := range 8 {
		devices = append(devices, srv.login(t, "ivy@example.com", fmt.Sprintf("ivy-device-%02d", i)))
	}

	health := startProbes(t, srv)
	clients := startFleet(t, srv, devices)
	if !clients.await(60*time.Second, func(w *refresher) bool { return w.ok >= 3 }) {
		t.Fatal("the clients did not all refresh three times before the restart")
	}

	began := time.Now()
	out, err := exec.Command("sh", "-c", restartPostgres).CombinedOutput()
	if err != nil {
		t.Errorf("%s: %v\n%s", restartPostgres, err, out)
	}
	t.Logf("PostgreSQL restart took %v", time.Since(began).Round(time.Millisecond))
	waitPostgresUp(t)
	clients.markRecovered()
	forgetDeadConnections(t, db)

	clients.await(60*time.Second, func(w *refresher) bool { return w.okAfter >= 3 })
	clients.stop()
	health.stop()

	// What the clients saw.
	var ok, unavailable, retried, meOK, me503 int
	for _, w := range clients.clients {
		ok, unavailable, retried, meOK, me503 = ok+w.ok, unavailable+w.unavailable, retried+w.retried, meOK+w.meOK, me503+w.me503
		for _, f := range w.failures {
			t.Errorf("client %s: %s", w.dev.ID, f)
		}
		if w.okAfter < 3 {
			t.Errorf("client %s: %d refreshes since the database came back, want at least 3 (within 60s)", w.dev.ID, w.okAfter)
		}
		if w.retrying || (w.unavailable > 0 && w.retried == 0) {
			t.Errorf("client %s: answered 503 %d times, then never succeeded with the same token", w.dev.ID, w.unavailable)
		}
	}
	t.Logf("refreshes: %d answered 200, %d answered 503 unavailable, %d retries of a 503'd token succeeded; /api/me: %d 200, %d 503",
		ok, unavailable, retried, meOK, me503)
	t.Logf("probes: /healthz non-200 %d times; /readyz 200 %d times, 503 %d times, other %d times", len(health.healthBad), health.ready200, health.ready503, len(health.readyOther))
	if unavailable == 0 {
		t.Error("no refresh met the outage (no 503): the restart was not observed")
	}
	for _, h := range health.healthBad {
		t.Errorf("/healthz during the fault: %s", h)
	}
	for _, r := range health.readyOther {
		t.Errorf("/readyz during the fault: %s", r)
	}
	if health.ready503 == 0 {
		t.Error("/readyz never answered 503 while PostgreSQL was restarting")
	}
	if r := srv.must(t, "GET", "/readyz", ""); r.Status != http.StatusOK {
		t.Errorf("/readyz after recovery: %s", r)
	}

	// Every family's live token is the one its client holds, unexpired, and it works.
	for _, d := range devices {
		var sessions []models.DeviceSession
		if err := db.Store.DB().Where("device_id = ? AND revoked_at IS NULL", d.ID).Find(&sessions).Error; err != nil {
			t.Fatal(err)
		}
		if len(sessions) != 1 {
			t.Errorf("device %s has %d live sessions, want 1", d.ID, len(sessions))
			continue
		}
		s := sessions[0]
		if !s.TokenExpiresAt.After(time.Now()) {
			t.Errorf("device %s: the family's live token expired at %s", d.ID, s.TokenExpiresAt)
		}
		if !bytes.Equal(s.TokenHash, sha256Of(d.Refresh)) {
			t.Errorf("device %s: the family's live token is not the one its client holds", d.ID)
		}
		r := srv.must(t, "POST", "/auth/refresh", "", "Cookie", "gh_refresh="+d.Refresh, "X-Device-Id", d.ID)
		next, _ := r.cookie("gh_refresh")
		if r.Status != http.StatusOK || next == "" {
			t.Errorf("device %s: refresh after recovery: %s", d.ID, r)
			continue
		}
		d.Refresh, d.Access = next, r.accessToken()
		if me := srv.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+d.Access); me.Status != http.StatusOK {
			t.Errorf("device %s: GET /api/me after recovery: %s", d.ID, me)
		}
	}
	if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = ?", models.EventTokenReused); n != 0 {
		t.Errorf("%d token_reused events: a client was taken for a replay", n)
	}

	// Revocation still reaches the server at once: the revocation feed came back with the database.
	var me struct {
		SessionID string `json:"session_id"`
	}
	first := srv.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+devices[0].Access)
	if err := json.Unmarshal(first.Body, &me); err != nil || me.SessionID == "" {
		t.Fatalf("GET /api/me: %s", first)
	}
	db.MustExec(t, "UPDATE device_sessions SET revoked_at = ?, revoked_reason = 'signed_out' WHERE id = ?", time.Now().UTC(), me.SessionID)
	if err := waitUntil(revocationBound, func() (bool, string) {
		r := srv.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+devices[0].Access)
		return r.Status == http.StatusUnauthorized, r.String()
	}); err != nil {
		t.Errorf("a session revoked in the database after the restart is still accepted: %v", err)
	}

	// Whatever went wrong was logged without a token.
	if err := srv.stop(30 * time.Second); err != nil {
		t.Error(err)
	}
	log := srv.Log()
	if m := refreshTokenShape.FindString(log); m != "" {
		t.Errorf("the log holds a refresh token")
	}
	if m := jwtShape.FindString(log); m != "" {
		t.Errorf("the log holds an access token")
	}
	t.Logf("the server logged %d lines; its warnings and errors:\n%s", strings.Count(log, "\n"), summarizeTrouble(log))
}

// summarizeTrouble counts the log's warnings and errors by message, status and error text.
func summarizeTrouble(log string) string {
	counts := map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		var e struct {
			Level  string `json:"level"`
			Msg    string `json:"msg"`
			Status int    `json:"status"`
			Error  string `json:"error"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || (e.Level != "WARN" && e.Level != "ERROR") {
			continue
		}
		if len(e.Error) > 120 {
			e.Error = e.Error[:120] + "…"
		}
		counts[fmt.Sprintf("%s %q status=%d error=%q", e.Level, e.Msg, e.Status, e.Error)]++
	}
	var out []string
	for k, n := range counts {
		out = append(out, fmt.Sprintf("  %4d× %s", n, k))
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

var (
	refreshTokenShape = regexp.MustCompile(`ghr_[A-Za-z0-9_-]{43}`)
	jwtShape          = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.`)
)

func sha256Of(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}
