// The three-instance fault test: PostgreSQL behind PgBouncer (transaction pooling), a Redis of
// the test's own, and three `gatehouse serve` on loopback ports sharing the database, Redis and
// the keys. A load client sends each request of a device's chain to another instance while the
// test kills an instance with SIGKILL (just after it rotated three refreshes whose answers a proxy
// drops) and starts it again, rotates the signing keys, disables a user from the CLI, restarts
// Redis and signs devices out from the pages and the API; then it checks every family in the
// database and prints a report. It takes some 45 s of both cores, so it runs only with
// GATEHOUSE_CLUSTER_TESTS=1: `make test-cluster`, which CI runs.

package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/cmd/gatehouse/harness"
)

// envClusterTests turns the three-instance test on.
const envClusterTests = "GATEHOUSE_CLUSTER_TESTS"

// The cluster's settings that the assertions depend on.
const (
	clusterNodes      = 3
	clusterGrace      = 10 * time.Second // GATEHOUSE_REFRESH_GRACE: a retried refresh must succeed within it
	clusterLoginLimit = 5                // GATEHOUSE_LOGIN_LIMIT_ACCOUNT, per 15 minutes, shared through Redis
	clusterPace       = 40 * time.Millisecond
)

// clusterKeys is how every instance and CLI command of the cluster finds the signing keys and the
// server secret: in PostgreSQL, sealed under one master key; each instance's own key directory
// (the harness gives each one) stays empty, so the instances share no directory.
func clusterKeys(t *testing.T) map[string]string {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"GATEHOUSE_MASTER_KEY": base64.StdEncoding.EncodeToString(raw)}
}

// cluster is the three instances and what they share.
type cluster struct {
	t      *testing.T
	env    map[string]string // every instance's settings but its address
	db     *harness.Database
	redis  *redisServer
	addrs  [clusterNodes]string
	client *http.Client // follows no redirect: a page sign-in's cookies come with its 303

	mu    sync.Mutex
	nodes [clusterNodes]*harness.Server // replaced when an instance is started again

	answered [clusterNodes]atomic.Int64 // HTTP answers by instance

	failMu   sync.Mutex
	failures []string
}

func (c *cluster) fail(format string, args ...any) {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	c.failures = append(c.failures, fmt.Sprintf(format, args...))
}

func (c *cluster) node(i int) *harness.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// start runs instance i on its address and waits until it is ready.
func (c *cluster) start(i int) {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h, err := harness.Start(ctx, harness.Config{Dir: t.TempDir(), DatabaseURL: c.env["DATABASE_URL"],
		Env: with(c.env, map[string]string{"GATEHOUSE_ADDR": c.addrs[i]})})
	if err != nil {
		t.Fatalf("instance %d: %v", i, err)
	}
	c.mu.Lock()
	c.nodes[i] = h
	c.mu.Unlock()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if code, err := h.Stop(ctx); err != nil || code != 0 && code != -1 {
			t.Errorf("instance %d stopped with %d: %v", i, code, err)
		}
		if t.Failed() {
			t.Logf("instance %d (%s), its warnings and errors:\n%s", i, h.Addr, summarizeTrouble(h.Log()))
		}
	})
}

// send is one request to instance i; headers are name, value pairs.
func (c *cluster) send(i int, method, path, contentType, body string, headers ...string) (reply, error) {
	r, err := c.sendTo(c.addrs[i], method, path, contentType, body, headers...)
	if err == nil {
		c.answered[i].Add(1)
		if r.Status >= 500 && r.Status != http.StatusServiceUnavailable {
			c.fail("%s %s on instance %d: %s", method, path, i, r)
		}
	}
	return r, err
}

// sendTo is one request to an address (an instance, or a proxy in front of one).
func (c *cluster) sendTo(addr, method, path, contentType, body string, headers ...string) (reply, error) {
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k := 0; k+1 < len(headers); k += 2 {
		req.Header.Add(headers[k], headers[k+1])
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b, Cookies: resp.Cookies()}, nil
}

// me asks instance i for GET /api/me with an access token; an unreachable instance is an error.
func (c *cluster) me(i int, access string) (reply, error) {
	return c.send(i, "GET", "/api/me", "", "", "Authorization", "Bearer "+access)
}

// clusterDevice is one signed-in client: an app (refresh chain over the API) or a browser (pages).
type clusterDevice struct {
	id, email string
	browser   bool
	offset    int // the instance of its first request

	mu       sync.Mutex
	refresh  string
	access   string
	cookies  map[string]string // a browser's cookies
	signedIn bool              // false once the test revoked it on purpose

	stop, stopped chan struct{}
}

func (d *clusterDevice) tokens() (refresh, access string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.refresh, d.access
}

// retry is a refresh that failed at one instance and was presented again, with the same token,
// at the next.
type retry struct {
	took     time.Duration // from the first attempt to the success
	inFlight bool          // the first attempt reached an instance that died before answering
	fails    int
}

// load is the client side of the run: every device's loop, and what they saw.
type load struct {
	c       *cluster
	devices []*clusterDevice

	mu      sync.Mutex
	retries []retry
	meOK    int
	refresh int
}

func TestCluster(t *testing.T) {
	if os.Getenv(envClusterTests) != "1" {
		t.Skipf("set %s=1 to run the three-instance fault test (make test-cluster; a minute of every core)", envClusterTests)
	}
	began := time.Now()
	c := startCluster(t)
	users := []string{"ada@example.com", "bob@example.com", "cy@example.com", "dora@example.com", "rita@example.com"}
	for _, email := range users {
		r := runBinary(t, harness.CLI{Env: c.env}, password+"\n", "user", "create", "--email", email, "--password-stdin")
		if r.code != 0 {
			t.Fatalf("user create %s:\n%s", email, r)
		}
	}
	l := &load{c: c}
	for u, email := range users[:4] {
		name := strings.Split(email, "@")[0]
		for k := range 3 {
			d := l.signInApp(t, email, fmt.Sprintf("%s-app-%04d", name, k), (u+k)%clusterNodes)
			l.devices = append(l.devices, d)
		}
	}
	for u, email := range users[:2] {
		l.devices = append(l.devices, l.signInBrowser(t, email, u))
	}
	probe := l.signInApp(t, "cy@example.com", "cy-rotation-probe", 0)
	close(probe.stopped)     // watchRotation drives it, not drive
	var cut []*clusterDevice // refreshed through cutAnswers as instance 1 dies
	for k := range 3 {
		d := l.signInApp(t, "bob@example.com", fmt.Sprintf("bob-cut-%04d", k), 1)
		close(d.stopped)
		cut = append(cut, d)
	}
	setup := time.Since(began)

	// The run: the load, and the faults on a timeline beside it.
	start := time.Now()
	for _, d := range l.devices {
		go l.drive(d)
	}
	l.devices = append(l.devices, probe)
	l.devices = append(l.devices, cut...)
	rotation := &rotationWatch{}
	probeStop := make(chan struct{})
	probeDone := make(chan struct{})
	go func() { defer close(probeDone); l.watchRotation(probe, rotation, probeStop) }()
	at := func(offset time.Duration) { time.Sleep(time.Until(start.Add(offset))) }
	device := func(id string) *clusterDevice {
		for _, d := range l.devices {
			if d.id == id {
				return d
			}
		}
		t.Fatalf("no device %s", id)
		return nil
	}
	var revocations []revoked

	at(3 * time.Second)
	revocations = append(revocations, l.signOutAPI(device("ada-app-0002"))...)

	at(6 * time.Second)
	// The refreshes of the cut devices reach instance 1, which rotates them, and their answers
	// are lost; then it dies. Each client presents the same token again at instance 2.
	proxy := cutAnswers(t, c.addrs[1])
	var cutAt []time.Time
	for _, d := range cut {
		cutAt = append(cutAt, time.Now())
		refresh, _ := d.tokens()
		if r, err := c.sendTo(proxy, "POST", "/auth/refresh", "", "", "Cookie", "gh_refresh="+refresh, "X-Device-Id", d.id); err == nil {
			t.Fatalf("a refresh through the proxy that cuts answers was answered: %s", r)
		}
	}
	killed := c.node(1)
	if _, err := killed.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	for k, d := range cut {
		l.retryCut(d, 2, cutAt[k])
	}
	time.Sleep(time.Second)
	c.start(1)
	restarted := time.Since(killedAt)

	at(12 * time.Second)
	revocations = append(revocations, l.signOutPage(device("ada-browser"))...)

	at(15 * time.Second)
	// Published at once on every instance (NOTIFY through the direct listen URL); it signs 3 s later
	// here (a minute by default), by when every instance has it.
	rotate := runBinary(t, harness.CLI{Env: c.env}, "", "keys", "rotate", "--activate-after", "3s")
	if rotate.code != 0 {
		t.Fatalf("keys rotate:\n%s", rotate)
	}
	rotation.setNew(newKeyID(t, rotate.stdout))

	at(20 * time.Second)
	revocations = append(revocations, l.disable("dora@example.com")...)

	at(24 * time.Second)
	redisDown := c.redis.restart(t)

	at(27 * time.Second)
	revocations = append(revocations, l.signOutAPI(device("cy-app-0002"))...)

	at(30 * time.Second)
	revocations = append(revocations, l.signOutPage(device("bob-browser"))...)

	at(33 * time.Second)
	limited := l.checkSharedLoginLimit(t, "rita@example.com")

	// Run on until every instance has verified a token signed with the new key (instances read a
	// key directory every 30 s, or at once when a token names a key they do not know).
	at(36 * time.Second)
	if err := waitUntil(45*time.Second, func() (bool, string) { return rotation.done(), rotation.String() }); err != nil {
		t.Errorf("the rotated key never verified on every instance: %v", err)
	}
	for _, d := range l.devices {
		d.halt()
	}
	close(probeStop)
	<-probeDone
	ran := time.Since(start)

	// Afterwards.
	for _, r := range revocations {
		for i := range clusterNodes {
			if reply, err := c.me(i, r.access); err != nil || reply.Status != http.StatusUnauthorized {
				t.Errorf("%s: instance %d still answers %v %v for the revoked access token", r.what, i, reply, err)
			}
		}
	}
	l.checkFamilies(t)
	c.failMu.Lock()
	for _, f := range c.failures {
		t.Error(f)
	}
	c.failMu.Unlock()
	for _, r := range l.retries {
		if r.took >= clusterGrace {
			t.Errorf("a retried refresh took %v, beyond the grace window %v", r.took, clusterGrace)
		}
	}

	// The report.
	var delays []time.Duration
	for _, r := range revocations {
		delays = append(delays, r.delays...)
	}
	slices.Sort(delays)
	inFlight := 0
	for _, r := range l.retries {
		if r.inFlight {
			inFlight++
		}
	}
	var byNode []string
	for i := range clusterNodes {
		byNode = append(byNode, fmt.Sprintf("%d: %d", i, c.answered[i].Load()))
	}
	t.Logf("cluster report (setup %v, run %v):", setup.Round(time.Millisecond), ran.Round(time.Millisecond))
	t.Logf("  revocation propagation, from the revoking answer to each instance's first 401 (%d revocations × %d instances): p50 %v, p99 %v, max %v",
		len(revocations), clusterNodes, percentile(delays, 50), percentile(delays, 99), percentile(delays, 100))
	graceRetries := c.graceRetries()
	if graceRetries < len(cut) {
		t.Errorf("%d refreshes answered from the grace window, want at least the %d whose rotation instance 1 committed without answering", graceRetries, len(cut))
	}
	t.Logf("  kill -9 of instance 1: back and ready %v later; %d refreshes retried at another instance with the same token, %d of them sent to instance 1 as it died (%d of those rotated there, their answers cut off before the kill); the slowest accepted after %v; %d answered from the grace window",
		restarted.Round(time.Millisecond), len(l.retries), inFlight, len(cut), slowest(l.retries), graceRetries)
	t.Logf("  key rotation: %s", rotation)
	t.Logf("  Redis restarted (down %v); then wrong passwords for one account (limit %d), by instance: %s", redisDown.Round(time.Millisecond), clusterLoginLimit, limited)
	t.Logf("  requests answered by instance: %s; refreshes %d, bearer checks %d", strings.Join(byNode, ", "), l.refresh, l.meOK)
}

// graceRetries adds up the refreshes the running instances answered from the grace window: a
// token presented again after its rotation had committed.
func (c *cluster) graceRetries() int {
	total := 0
	for i := range clusterNodes {
		r, err := c.send(i, "GET", "/metrics", "", "")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(r.Body), "\n") {
			if v, ok := strings.CutPrefix(line, `gatehouse_refresh_total{result="grace_retry"} `); ok {
				n, _ := strconv.ParseFloat(v, 64)
				total += int(n)
			}
		}
	}
	return total
}

// startCluster starts PgBouncer on a fresh database, a Redis of the test's own and the three
// instances.
func startCluster(t *testing.T) *cluster {
	db, pgb := behindPgBouncer(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed, and CI=true requires the cluster test")
		}
		t.Skip("redis-server is not installed: cluster test skipped")
	}
	c := &cluster{t: t, db: db, redis: startRedis(t),
		client: &http.Client{Timeout: 15 * time.Second,
			Transport:     &http.Transport{MaxIdleConnsPerHost: 64},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	t.Cleanup(c.client.CloseIdleConnections)
	c.env = with(pgbouncerEnv(db, pgb), clusterKeys(t))
	c.env = with(c.env, map[string]string{
		"REDIS_URL":                     "redis://" + c.redis.addr + "/0",
		"GATEHOUSE_BASE_URL":            sharedBaseURL,
		"GATEHOUSE_ACCESS_TTL":          "1h", // a refusal within the run is a revocation, never an expiry
		"GATEHOUSE_REFRESH_GRACE":       clusterGrace.String(),
		"GATEHOUSE_LOGIN_LIMIT_ACCOUNT": fmt.Sprintf("%d/15m", clusterLoginLimit),
		"GATEHOUSE_LOGIN_LIMIT_IP":      "10000/15m", // every client of the test is 127.0.0.1
		"GATEHOUSE_SESSION_LIMIT":       "6000/1m",
		"GATEHOUSE_PRUNE_INTERVAL":      "0s",
		"GATEHOUSE_LOG_FORMAT":          "json",
	})
	for i := range clusterNodes {
		c.addrs[i] = freeAddr(t)
	}
	for i := range clusterNodes {
		c.start(i)
	}
	return c
}

// signInApp signs an app in through the API at instance i.
func (l *load) signInApp(t *testing.T, email, id string, i int) *clusterDevice {
	t.Helper()
	r, err := l.c.send(i, "POST", "/auth/login", "application/json", loginBody(email, password), "X-Device-Id", id)
	refresh, _ := r.cookie("gh_refresh")
	if err != nil || r.Status != http.StatusOK || refresh == "" {
		t.Fatalf("sign-in of %s at instance %d: %v %v", id, i, r, err)
	}
	return &clusterDevice{id: id, email: email, offset: i, refresh: refresh, access: r.accessToken(), signedIn: true,
		stop: make(chan struct{}), stopped: make(chan struct{})}
}

// csrfInPage finds the form token of a page.
var csrfInPage = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// signInBrowser signs a browser in through the pages: the form from instance i, the post to the
// next one (CSRF tokens and cookies hold across instances: they share the server secret).
func (l *load) signInBrowser(t *testing.T, email string, i int) *clusterDevice {
	t.Helper()
	d := &clusterDevice{id: strings.Split(email, "@")[0] + "-browser", email: email, browser: true, offset: i,
		cookies: map[string]string{}, signedIn: true, stop: make(chan struct{}), stopped: make(chan struct{})}
	page, err := l.c.send(i, "GET", "/login", "", "")
	if err != nil || page.Status != http.StatusOK {
		t.Fatalf("GET /login: %v %v", page, err)
	}
	d.keep(page)
	token := csrfInPage.FindSubmatch(page.Body)
	if token == nil {
		t.Fatalf("the sign-in page has no CSRF token:\n%s", page.Body)
	}
	form := url.Values{"email": {email}, "password": {password}, "_csrf": {string(token[1])}}
	r, err := l.c.send((i+1)%clusterNodes, "POST", "/login", "application/x-www-form-urlencoded", form.Encode(), "Cookie", d.cookieHeader())
	if err != nil || r.Status != http.StatusSeeOther {
		t.Fatalf("POST /login of %s: %v %v", d.id, r, err)
	}
	d.keep(r)
	if d.cookies["gh_access"] == "" || d.cookies["gh_refresh"] == "" {
		t.Fatalf("the page sign-in set no session cookies: %v", r.Cookies)
	}
	d.refresh, d.access = d.cookies["gh_refresh"], d.cookies["gh_access"]
	return d
}

// keep stores the cookies an answer set (an empty value clears one).
func (d *clusterDevice) keep(r reply) {
	for _, ck := range r.Cookies {
		if ck.Value == "" {
			delete(d.cookies, ck.Name)
		} else {
			d.cookies[ck.Name] = ck.Value
		}
	}
}

func (d *clusterDevice) cookieHeader() string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(d.cookies)) {
		parts = append(parts, name+"="+d.cookies[name])
	}
	return strings.Join(parts, "; ")
}

// drive runs a device's chain until halted: each request goes to the instance after the one
// before. An app refreshes twice, then shows its access token; a browser loads its devices page.
func (l *load) drive(d *clusterDevice) {
	defer close(d.stopped)
	for step := 0; ; step++ {
		select {
		case <-d.stop:
			return
		case <-time.After(clusterPace):
		}
		i := (d.offset + step) % clusterNodes
		switch {
		case d.browser:
			l.pageView(d, i)
		case step%3 == 2:
			l.bearer(d, i)
		default:
			if !l.refreshChain(d, i) {
				return
			}
		}
	}
}

// halt stops the device's loop and waits for its last request.
func (d *clusterDevice) halt() {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	<-d.stopped
}

// refreshChain rotates the device's refresh token at instance i. When the instance cannot be
// reached, dies before answering, or answers 503, the client presents the same token at the next
// instance, as an app whose request failed would. Anything but success signs the client out,
// which no fault may do. It reports whether the chain goes on.
func (l *load) refreshChain(d *clusterDevice, i int) bool {
	refresh, _ := d.tokens()
	began := time.Now()
	var rt retry
	for attempt := range 2 * clusterNodes {
		r, err := l.c.send(i, "POST", "/auth/refresh", "", "", "Cookie", "gh_refresh="+refresh, "X-Device-Id", d.id)
		switch {
		case err != nil || r.Status == http.StatusServiceUnavailable:
			rt.fails++
			rt.inFlight = rt.inFlight || (err != nil && !errors.Is(err, syscall.ECONNREFUSED))
			i = (i + 1) % clusterNodes
			time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
			continue
		case r.Status != http.StatusOK:
			l.c.fail("%s: refresh at instance %d refused: %s (the client is signed out)", d.id, i, r)
			return false
		}
		next, _ := r.cookie("gh_refresh")
		d.mu.Lock()
		d.refresh, d.access = next, r.accessToken()
		d.mu.Unlock()
		l.mu.Lock()
		l.refresh++
		if rt.fails > 0 {
			rt.took = time.Since(began)
			l.retries = append(l.retries, rt)
		}
		l.mu.Unlock()
		return true
	}
	l.c.fail("%s: no instance answered a refresh in %d attempts", d.id, 2*clusterNodes)
	return false
}

// retryCut presents a cut device's token again at instance i, as its client does when its refresh
// got no answer: the rotation it asked for committed, so the same token is now the rotated one,
// inside the grace window, and must get the same successor, not a reuse alarm. Then the chain
// goes on with one more refresh at the next instance.
func (l *load) retryCut(d *clusterDevice, i int, began time.Time) {
	refresh, _ := d.tokens()
	r, err := l.c.send(i, "POST", "/auth/refresh", "", "", "Cookie", "gh_refresh="+refresh, "X-Device-Id", d.id)
	next, _ := r.cookie("gh_refresh")
	if err != nil || r.Status != http.StatusOK || next == "" {
		l.c.fail("%s: the retry of a refresh whose answer was lost, at instance %d: %v %v (the client is signed out)", d.id, i, r, err)
		return
	}
	d.mu.Lock()
	d.refresh, d.access = next, r.accessToken()
	d.mu.Unlock()
	l.mu.Lock()
	l.retries = append(l.retries, retry{took: time.Since(began), inFlight: true, fails: 1})
	l.mu.Unlock()
	l.refreshChain(d, (i+1)%clusterNodes)
}

// cutAnswers is a proxy in front of addr that passes each request on and drops its answer: when
// the first byte of the answer arrives (the server has done the work and committed), it closes
// both connections. Its client sees its request vanish, as when an instance dies mid-answer.
func cutAnswers(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer client.Close()
				server, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer server.Close()
				go func() { _, _ = io.Copy(server, client) }()
				_, _ = server.Read(make([]byte, 1))
				if tcp, ok := client.(*net.TCPConn); ok {
					_ = tcp.SetLinger(0) // a reset, not a clean end of the answer
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// bearer shows the device's access token to instance i, which must accept it (or be away).
func (l *load) bearer(d *clusterDevice, i int) {
	_, access := d.tokens()
	r, err := l.c.me(i, access)
	switch {
	case err != nil || r.Status == http.StatusServiceUnavailable:
	case r.Status != http.StatusOK:
		l.c.fail("%s: instance %d refused a live access token (signed with key %s): %s; %s", d.id, i, keyIDOf(access), r, l.c.askAgain(i, access))
	default:
		l.mu.Lock()
		l.meOK++
		l.mu.Unlock()
	}
}

// askAgain presents a refused access token to the instance once more, a little later, to say in
// the failure whether the refusal lasted (the session's state) or passed (the instance had not
// yet learnt the key that signed it).
func (c *cluster) askAgain(i int, access string) string {
	time.Sleep(1500 * time.Millisecond)
	r, err := c.me(i, access)
	if err != nil {
		return "asked again 1.5 s later: " + err.Error()
	}
	return fmt.Sprintf("asked again 1.5 s later: %d", r.Status)
}

// pageView loads the devices page at instance i with the browser's cookies.
func (l *load) pageView(d *clusterDevice, i int) {
	d.mu.Lock()
	cookies := d.cookieHeader()
	d.mu.Unlock()
	r, err := l.c.send(i, "GET", "/devices", "", "", "Cookie", cookies)
	switch {
	case err != nil || r.Status == http.StatusServiceUnavailable:
	case r.Status != http.StatusOK:
		l.c.fail("%s: instance %d answered the devices page with %d (location %q)", d.id, i, r.Status, r.Header.Get("Location"))
	default:
		d.mu.Lock()
		d.keep(r)
		d.mu.Unlock()
	}
}

// revoked is one revoked access token and how long each instance took to refuse it after the
// revoking answer.
type revoked struct {
	what   string
	access string
	delays []time.Duration
}

// measure first has every instance accept each token (so that each holds its session in its
// revocation cache), then runs revoke, then polls every instance until it refuses each token.
func (l *load) measure(targets []revoked, revoke func() bool) []revoked {
	for _, r := range targets {
		for i := range clusterNodes {
			if reply, err := l.c.me(i, r.access); err != nil || reply.Status != http.StatusOK {
				l.c.fail("%s: instance %d before the revocation: %v %v", r.what, i, reply, err)
			}
		}
	}
	if !revoke() {
		return nil
	}
	answered := time.Now()
	var wg sync.WaitGroup
	for k := range targets {
		r := &targets[k]
		r.delays = make([]time.Duration, clusterNodes)
		for i := range clusterNodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := waitUntil(revocationBound, func() (bool, string) {
					reply, err := l.c.me(i, r.access)
					if err != nil {
						return false, err.Error()
					}
					return reply.Status == http.StatusUnauthorized, reply.String()
				})
				r.delays[i] = time.Since(answered)
				if err != nil {
					l.c.fail("%s: instance %d still accepts the access token: %v", r.what, i, err)
				}
			}()
		}
	}
	wg.Wait()
	return targets
}

// signOutAPI signs an app out with POST /auth/logout at the instance after its last one.
func (l *load) signOutAPI(d *clusterDevice) []revoked {
	d.halt()
	refresh, access := d.tokens()
	return l.measure([]revoked{{what: "API sign-out of " + d.id, access: access}}, func() bool {
		r, err := l.c.send((d.offset+1)%clusterNodes, "POST", "/auth/logout", "", "", "Cookie", "gh_refresh="+refresh)
		if err != nil || r.Status != http.StatusNoContent {
			l.c.fail("sign-out of %s: %v %v", d.id, r, err)
			return false
		}
		d.signedIn = false
		return true
	})
}

// signOutPage signs a browser out with the form of its devices page: the page from one instance,
// the post to the next.
func (l *load) signOutPage(d *clusterDevice) []revoked {
	d.halt()
	page, err := l.c.send(d.offset, "GET", "/devices", "", "", "Cookie", d.cookieHeader())
	token := csrfInPage.FindSubmatch(page.Body)
	if err != nil || page.Status != http.StatusOK || token == nil {
		l.c.fail("%s: the devices page before the sign-out: %v %v", d.id, page, err)
		return nil
	}
	d.keep(page)
	return l.measure([]revoked{{what: "page sign-out of " + d.id, access: d.cookies["gh_access"]}}, func() bool {
		form := url.Values{"_csrf": {string(token[1])}}
		r, err := l.c.send((d.offset+1)%clusterNodes, "POST", "/logout", "application/x-www-form-urlencoded", form.Encode(), "Cookie", d.cookieHeader())
		if err != nil || r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
			l.c.fail("page sign-out of %s: %v %v", d.id, r, err)
			return false
		}
		d.signedIn = false
		return true
	})
}

// disable disables an account with the CLI, as an operator would, and measures every device of it.
func (l *load) disable(email string) []revoked {
	var devices []*clusterDevice
	var targets []revoked
	for _, d := range l.devices {
		if d.email == email {
			d.halt()
			_, access := d.tokens()
			devices = append(devices, d)
			targets = append(targets, revoked{what: "disable of " + email + " (" + d.id + ")", access: access})
		}
	}
	return l.measure(targets, func() bool {
		r, err := harness.CLI{Env: l.c.env}.Run(context.Background(), "", "user", "disable", "--email", email)
		if err != nil || r.Code != 0 {
			l.c.fail("user disable %s: %v %v", email, r, err)
			return false
		}
		for _, d := range devices {
			d.signedIn = false
		}
		return true
	})
}

// checkSharedLoginLimit sends wrong passwords for one account to the instances in turn: the
// limit counts them across instances (Redis), so the attempt after the limit is refused by
// whichever instance gets it, although no instance alone has seen that many.
func (l *load) checkSharedLoginLimit(t *testing.T, email string) string {
	var seen []string
	for k := range clusterLoginLimit + 1 {
		i := k % clusterNodes
		r, err := l.c.send(i, "POST", "/auth/login", "application/json", loginBody(email, "not the password"), "X-Device-Id", "rate-limit-probe")
		want := http.StatusUnauthorized
		if k == clusterLoginLimit {
			want = http.StatusTooManyRequests
		}
		if err != nil || r.Status != want {
			t.Errorf("wrong password %d of %s at instance %d: %v %v, want %d (the login limit is %d per account, across instances)",
				k+1, email, i, r, err, want, clusterLoginLimit)
		}
		seen = append(seen, fmt.Sprintf("%d→%d", i, r.Status))
	}
	return strings.Join(seen, ", ")
}

// rotationWatch follows the rotation probe: tokens freshly issued by one instance, each
// verified at once by all three, before and after `gatehouse keys rotate`.
type rotationWatch struct {
	mu       sync.Mutex
	newKey   string
	checked  int            // tokens verified everywhere
	byKey    map[string]int // of which, by signing key
	newEvery [clusterNodes]bool
}

func (w *rotationWatch) setNew(kid string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.newKey = kid
}

func (w *rotationWatch) done() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.newKey != "" && !slices.Contains(w.newEvery[:], false)
}

func (w *rotationWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprintf("%d fresh tokens each verified by all %d instances at once (%d signed with the new key %s; instances that signed with it: %v)",
		w.checked, clusterNodes, w.byKey[w.newKey], w.newKey, w.newEvery)
}

// watchRotation refreshes the probe device at each instance in turn and has all three verify the
// new access token straight away, until stopped.
func (l *load) watchRotation(d *clusterDevice, w *rotationWatch, stop chan struct{}) {
	w.byKey = map[string]int{}
	for step := 0; ; step++ {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		i := step % clusterNodes
		if !l.refreshChain(d, i) {
			return
		}
		_, access := d.tokens()
		kid := keyIDOf(access)
		everywhere := true
		for j := range clusterNodes {
			r, err := l.c.me(j, access)
			switch {
			case err != nil || r.Status == http.StatusServiceUnavailable:
				everywhere = false
			case r.Status != http.StatusOK:
				everywhere = false
				l.c.fail("a token signed with key %s by instance %d refused by instance %d: %s; %s", kid, i, j, r, l.c.askAgain(j, access))
			}
		}
		if !everywhere {
			continue
		}
		w.mu.Lock()
		w.checked++
		w.byKey[kid]++
		if kid == w.newKey && kid != "" {
			w.newEvery[i] = true // the instance that issued it signs with the new key
		}
		w.mu.Unlock()
	}
}

// keyIDOf is the kid in a JWT's header.
func keyIDOf(token string) string {
	header, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return ""
	}
	var h struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(b, &h)
	return h.Kid
}

var newKeyInOutput = regexp.MustCompile(`new signing key (\S+)`)

// newKeyID reads the new key's id from `gatehouse keys rotate`.
func newKeyID(t *testing.T, stdout string) string {
	t.Helper()
	m := newKeyInOutput.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("keys rotate did not name its new key: %q", stdout)
	}
	return m[1]
}

// checkFamilies compares every device with the database: a device still signed in has exactly
// one live session, whose live token is the client's last refresh token (no family forked, none
// lost); a device signed out or disabled has none.
func (l *load) checkFamilies(t *testing.T) {
	for _, d := range l.devices {
		refresh, _ := d.tokens()
		if d.browser {
			refresh = d.cookies["gh_refresh"]
		}
		sum := sha256.Sum256([]byte(refresh))
		live := countRows(t, l.c.db.URL, "SELECT count(*) FROM device_sessions WHERE device_id = $1 AND revoked_at IS NULL", d.id)
		current := countRows(t, l.c.db.URL, "SELECT count(*) FROM device_sessions WHERE device_id = $1 AND revoked_at IS NULL AND token_hash = $2", d.id, sum[:])
		switch {
		case d.browser && d.signedIn:
			// A browser's device id is its cookie's, not its name: find it by its token.
			if n := countRows(t, l.c.db.URL, "SELECT count(*) FROM device_sessions WHERE revoked_at IS NULL AND token_hash = $1", sum[:]); n != 1 {
				t.Errorf("%s: %d live sessions hold its refresh token, want 1", d.id, n)
			}
		case d.browser:
		case d.signedIn && (live != 1 || current != 1):
			t.Errorf("%s: %d live sessions, %d of them with the client's last token; want exactly one, with it (a forked or lost family)", d.id, live, current)
		case !d.signedIn && live != 0:
			t.Errorf("%s was revoked but has %d live sessions", d.id, live)
		}
	}
	forked := countRows(t, l.c.db.URL, "SELECT count(*) FROM (SELECT device_id FROM device_sessions WHERE revoked_at IS NULL GROUP BY user_id, device_id HAVING count(*) > 1) f")
	if forked != 0 {
		t.Errorf("%d devices with more than one live session", forked)
	}
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(len(sorted), k)-1)].Round(100 * time.Microsecond)
}

func slowest(rs []retry) time.Duration {
	var d time.Duration
	for _, r := range rs {
		d = max(d, r.took)
	}
	return d.Round(time.Millisecond)
}

// redisServer is a redis-server of the test's own on a free port, so that restarting it disturbs
// no other test.
type redisServer struct {
	addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	r := &redisServer{addr: freeAddr(t), dir: t.TempDir()}
	r.launch(t)
	t.Cleanup(r.kill)
	return r
}

func (r *redisServer) launch(t *testing.T) {
	t.Helper()
	_, port, _ := net.SplitHostPort(r.addr)
	r.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.dir)
	log, err := os.Create(filepath.Join(r.dir, "redis-"+strconv.Itoa(time.Now().Nanosecond())+".log"))
	if err != nil {
		t.Fatal(err)
	}
	r.cmd.Stdout, r.cmd.Stderr = log, log
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	r.done = make(chan struct{})
	go func() { _ = r.cmd.Wait(); log.Close(); close(r.done) }()
	client := redis.NewClient(&redis.Options{Addr: r.addr})
	defer client.Close()
	if err := waitUntil(10*time.Second, func() (bool, string) {
		err := client.Ping(context.Background()).Err()
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		t.Fatalf("redis-server on %s: %v", r.addr, err)
	}
}

func (r *redisServer) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// restart kills Redis (every counter and subscription with it) and starts it again on the same
// port; it returns how long Redis was away.
func (r *redisServer) restart(t *testing.T) time.Duration {
	t.Helper()
	began := time.Now()
	r.kill()
	time.Sleep(500 * time.Millisecond)
	r.launch(t)
	return time.Since(began)
}
