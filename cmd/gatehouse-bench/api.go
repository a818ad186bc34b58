package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// The cookies' names over plain http on 127.0.0.1 (see the README; over https they carry __Host-).
const (
	refreshCookie = "gh_refresh"
	accessCookie  = "gh_access"
	deviceCookie  = "gh_device"
	csrfCookie    = "gh_csrf"
)

// api is a client of the app API, the way an app would use it: JSON bodies, the refresh cookie,
// X-Device-Id and bearer tokens, over keep-alive connections.
type api struct {
	base   string
	client *http.Client
}

func newAPI(base string) *api {
	transport := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute, DisableCompression: true}
	// A redirect is an answer to check (a page that sends its browser to /login), not to follow.
	noRedirects := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &api{base: base, client: &http.Client{Transport: transport, Timeout: 30 * time.Second, CheckRedirect: noRedirects}}
}

// answer is a response read in full (so that its connection is reused).
type answer struct {
	status  int
	body    []byte
	refresh string // the refresh cookie it set, if any
	// The page cookies it set, if any; refreshCleared: it told the browser to drop the refresh cookie.
	access, csrf   string
	refreshCleared bool
}

func (a *api) do(req *http.Request) (answer, error) {
	resp, err := a.client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	ans := answer{status: resp.StatusCode, body: body}
	for _, c := range resp.Cookies() {
		switch {
		case c.Name == refreshCookie && c.MaxAge < 0:
			ans.refreshCleared = true
		case c.Name == refreshCookie:
			ans.refresh = c.Value
		case c.Name == accessCookie && c.MaxAge >= 0:
			ans.access = c.Value
		case c.Name == csrfCookie && c.MaxAge >= 0:
			ans.csrf = c.Value
		}
	}
	return ans, nil
}

// accessToken is the access_token of a token body, "" when there is none.
func accessToken(body []byte) string {
	var tb struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(body, &tb) != nil {
		return ""
	}
	return tb.AccessToken
}

// login is POST /auth/login for one device.
func (a *api) login(ctx context.Context, acc account, deviceID string) (answer, error) {
	return a.loginAs(ctx, acc, deviceID, "")
}

// loginAs is login from a client that names itself with userAgent ("": Go's default).
func (a *api) loginAs(ctx context.Context, acc account, deviceID, userAgent string) (answer, error) {
	body, _ := json.Marshal(map[string]string{"email": acc.email, "password": acc.password, "device_name": "Bench " + deviceID})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/auth/login", bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Device-Id", deviceID)
	if userAgent != "" {
		req.Header.Set("User-Agent", userAgent)
	}
	return a.do(req)
}

// loginChecked signs one device in and checks the answer: 200, a refresh cookie, an access token.
func (a *api) loginChecked(ctx context.Context, acc account, deviceID string) outcome {
	ans, err := a.login(ctx, acc, deviceID)
	switch {
	case err != nil:
		return failed
	case ans.status == http.StatusTooManyRequests || ans.status == http.StatusServiceUnavailable:
		return shed
	case ans.status != http.StatusOK || ans.refresh == "" || accessToken(ans.body) == "":
		return failed
	}
	return succeeded
}

// signInDevices signs in n devices named prefix-NN, spread over the accounts, two at a time
// (more would only wait for the server's hash slots), from a client that names itself userAgent
// ("": Go's default).
func (a *api) signInDevices(ctx context.Context, accounts []account, prefix string, n int, userAgent string) ([]*device, error) {
	devices := make([]*device, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	slots := make(chan struct{}, 2)
	for i := range n {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			d := &device{id: fmt.Sprintf("%s-%02d", prefix, i)}
			ans, err := a.loginAs(ctx, accounts[i%len(accounts)], d.id, userAgent)
			switch {
			case err != nil:
				errs[i] = err
			case ans.status != http.StatusOK || ans.refresh == "":
				errs[i] = fmt.Errorf("sign in %s: status %d: %s", d.id, ans.status, ans.body)
			default:
				d.refresh, d.access = ans.refresh, accessToken(ans.body)
				devices[i] = d
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return devices, nil
}

// refresh is POST /auth/refresh with the device's cookie. It checks the answer (200, a new
// cookie that differs from the one presented, an access token) and moves the chain on. After a
// transport error the old cookie is kept: presenting it again is the idempotent retry. A 401 is
// the server refusing the token for good: the device remembers it (see device.refused); 429 and
// 503 are load shed, counted apart.
func (a *api) refresh(ctx context.Context, d *device) outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/auth/refresh", nil)
	if err != nil {
		return failed
	}
	presented := d.refresh
	req.Header.Set("X-Device-Id", d.id)
	req.AddCookie(&http.Cookie{Name: refreshCookie, Value: presented})
	ans, err := a.do(req)
	switch {
	case err != nil:
		return failed
	case ans.status == http.StatusUnauthorized:
		d.refused(presented)
		return failed
	case ans.status == http.StatusTooManyRequests || ans.status == http.StatusServiceUnavailable:
		return shed
	case ans.status != http.StatusOK || ans.refresh == "" || ans.refresh == presented:
		return failed
	}
	access := accessToken(ans.body)
	if access == "" {
		return failed
	}
	d.rotated(presented, ans.refresh, access)
	return succeeded
}

// me is GET /api/me with a bearer token; it checks for 200 and a session id.
func (a *api) me(ctx context.Context, accessToken string) outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/api/me", nil)
	if err != nil {
		return failed
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	ans, err := a.do(req)
	if err != nil || ans.status != http.StatusOK {
		return failed
	}
	var me struct {
		SessionID string `json:"session_id"`
	}
	if json.Unmarshal(ans.body, &me) != nil || me.SessionID == "" {
		return failed
	}
	return succeeded
}

// Cell names, as the table shows them.
const (
	cellRefreshHTTP = "POST /auth/refresh (HTTP)"
	cellMeCached    = "GET /api/me (bearer, cached)"
	cellMeCold      = "GET /api/me (bearer, cold)"
	cellLogin       = "POST /auth/login (argon2id)"
	cellLimit       = "limit: one SQL statement"
	cellService     = "service, no HTTP (svc.Refresh)"
	// -pgbouncer: the same requests to the server behind PgBouncer.
	cellRefreshPooled = "POST /auth/refresh (HTTP, PgBouncer)"
	cellMePooled      = "GET /api/me (bearer, cached, PgBouncer)"
)

// refreshOp: each worker refreshes its own device's chain on inst over HTTP.
func (b *bench) refreshOp(inst *instance) op {
	return func(ctx context.Context, w, _ int) outcome {
		return inst.api.refresh(ctx, inst.devices[w])
	}
}

// meCachedOp readies the cached /api/me cell: each worker's device refreshes once over HTTP, so
// that its access token is one the server signed itself and so remembers as verified (and is
// fresh, whatever ran before). The op presents that token again and again. It also returns how
// many of those refreshes failed.
func (b *bench) meCachedOp(ctx context.Context, inst *instance, workers int) (op, int) {
	failures := 0
	for _, d := range inst.devices[:workers] {
		if inst.api.refresh(ctx, d) != succeeded {
			failures++
		}
	}
	return func(ctx context.Context, w, _ int) outcome {
		return inst.api.me(ctx, inst.devices[w].access)
	}, failures
}

// meCells are the cells of the /api/me phase: cached and cold, and cached through PgBouncer with
// -pgbouncer.
func (b *bench) meCells() []string {
	if b.pooled != nil {
		return []string{cellMeCached, cellMeCold, cellMePooled}
	}
	return []string{cellMeCached, cellMeCold}
}

// meColdOp readies the cold /api/me cell: -cold-tokens access tokens minted by the bench's own
// service, which signs with the server's keys. The server has never seen them, so it checks the
// Ed25519 signature of every one (its cache of verified signatures is keyed by the token's
// digest). Each worker presents each of its share once, warm-up included, and stops when they run out.
func (b *bench) meColdOp(ctx context.Context, workers int) (op, error) {
	perWorker := (b.opts.coldTokens + workers - 1) / workers
	b.log("  minting %d access tokens through the service for the cold cell", perWorker*workers)
	pools, err := b.direct.mintAccessTokens(ctx, b.directDevices[:workers], perWorker)
	if err != nil {
		return nil, err
	}
	next := make([]int, workers)
	return func(ctx context.Context, w, _ int) outcome {
		if next[w] == len(pools[w]) {
			return exhausted
		}
		token := pools[w][next[w]]
		next[w]++
		return b.main.api.me(ctx, token)
	}, nil
}

// loginOp signs in as a new device per request, named prefix-N with N unique in the run, cycling
// through the accounts.
func (b *bench) loginOp(prefix string) op {
	return func(ctx context.Context, _, _ int) outcome {
		n := b.logins.Add(1)
		return b.main.api.loginChecked(ctx, b.accounts[int(n)%len(b.accounts)], fmt.Sprintf("%s-%d", prefix, n))
	}
}
