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

// refreshCookie is the refresh cookie's name over plain http on 127.0.0.1 (see the README).
const refreshCookie = "gh_refresh"

// api is a client of the app API, the way an app would use it: JSON bodies, the refresh cookie,
// X-Device-Id and bearer tokens, over keep-alive connections.
type api struct {
	base   string
	client *http.Client
}

func newAPI(base string) *api {
	transport := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute, DisableCompression: true}
	return &api{base: base, client: &http.Client{Transport: transport, Timeout: 30 * time.Second}}
}

// answer is a response read in full (so that its connection is reused).
type answer struct {
	status  int
	body    []byte
	refresh string // the refresh cookie it set, if any
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
		if c.Name == refreshCookie {
			ans.refresh = c.Value
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
	body, _ := json.Marshal(map[string]string{"email": acc.email, "password": acc.password, "device_name": "Bench " + deviceID})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/auth/login", bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Device-Id", deviceID)
	return a.do(req)
}

// loginChecked signs one device in and checks the answer: 200, a refresh cookie, an access token.
func (a *api) loginChecked(ctx context.Context, acc account, deviceID string) outcome {
	ans, err := a.login(ctx, acc, deviceID)
	switch {
	case err != nil:
		return failed
	case ans.status == http.StatusTooManyRequests || ans.status == http.StatusServiceUnavailable:
		return refused
	case ans.status != http.StatusOK || ans.refresh == "" || accessToken(ans.body) == "":
		return failed
	}
	return succeeded
}

// signInDevices signs in n devices named prefix-NN, spread over the accounts, two at a time
// (the server hashes two passwords at once).
func (a *api) signInDevices(ctx context.Context, accounts []account, prefix string, n int) ([]*device, error) {
	devices := make([]*device, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	slots := make(chan struct{}, 2)
	for i := range n {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			d := &device{id: fmt.Sprintf("%s-%02d", prefix, i)}
			ans, err := a.login(ctx, accounts[i%len(accounts)], d.id)
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
// transport error the old cookie is kept: presenting it again is the idempotent retry.
func (a *api) refresh(ctx context.Context, d *device) outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/auth/refresh", nil)
	if err != nil {
		return failed
	}
	req.Header.Set("X-Device-Id", d.id)
	req.AddCookie(&http.Cookie{Name: refreshCookie, Value: d.refresh})
	ans, err := a.do(req)
	if err != nil || ans.status != http.StatusOK || ans.refresh == "" || ans.refresh == d.refresh {
		return failed
	}
	access := accessToken(ans.body)
	if access == "" {
		return failed
	}
	d.refresh, d.access = ans.refresh, access
	d.rotations++
	return succeeded
}

// me is GET /api/me with the device's bearer token; it checks for 200 and a session id.
func (a *api) me(ctx context.Context, d *device) outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/api/me", nil)
	if err != nil {
		return failed
	}
	req.Header.Set("Authorization", "Bearer "+d.access)
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
	cellMe          = "GET /api/me (bearer)"
	cellLogin       = "POST /auth/login (argon2id)"
	cellLimit       = "limit: one SQL statement"
	cellService     = "service, no HTTP (svc.Refresh)"
)

// refreshCell: each worker refreshes its own device's chain over HTTP against srv, for d.
func (b *bench) refreshCell(ctx context.Context, srv *server, workers int, d time.Duration) cell {
	client := b.api
	if srv != b.server {
		client = newAPI(srv.baseURL)
	}
	c := drive(ctx, cellRefreshHTTP, workers, d, srv.pid(), func(ctx context.Context, w, _ int) outcome {
		return client.refresh(ctx, b.httpDevices[w])
	})
	c.rssKiB = srv.rssKiB()
	return c
}

// meCell: each worker reads /api/me with its device's latest access token.
func (b *bench) meCell(ctx context.Context, workers int) cell {
	c := drive(ctx, cellMe, workers, b.opts.duration, b.server.pid(), func(ctx context.Context, w, _ int) outcome {
		return b.api.me(ctx, b.httpDevices[w])
	})
	c.rssKiB = b.server.rssKiB()
	return c
}

// loginCell: each worker signs in again and again, every time as a new device (a new session).
func (b *bench) loginCell(ctx context.Context, workers int) cell {
	c := drive(ctx, cellLogin, workers, b.opts.duration, b.server.pid(), b.loginOp(fmt.Sprintf("bench-login-%d", workers)))
	c.rssKiB = b.server.rssKiB()
	return c
}

// loginOp signs in as a new device per request, named prefix-worker-n, cycling through the accounts.
func (b *bench) loginOp(prefix string) op {
	return func(ctx context.Context, w, n int) outcome {
		return b.api.loginChecked(ctx, b.accounts[(w+n)%len(b.accounts)], fmt.Sprintf("%s-%d-%d", prefix, w, n))
	}
}
