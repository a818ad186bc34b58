package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/services/auth"
)

// The page cells of issue 16: GET /devices for a user with pageDevicesPerUser device sessions and
// pageEvents security events, as a browser asks for it.
const (
	pageDevicesPerUser = 10
	pageEvents         = 20 // the page shows the newest 20
	pageRoute          = "/devices"
	// browserUA names the page cells' browser: the page describes each device from its user agent,
	// so a real one makes it do its real work.
	browserUA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
)

// Cell names of the page cells, as the table shows them.
const (
	cellPageValid         = "GET /devices (valid access cookie)"
	cellPageExpired       = "GET /devices (expired access cookie: silent refresh)"
	cellPageValidSQLite   = "GET /devices (valid access cookie, SQLite)"
	cellPageExpiredSQLite = "GET /devices (expired access cookie: silent refresh, SQLite)"
)

// pageCells are the cells of the page phase.
var pageCells = []string{cellPageValid, cellPageExpired, cellPageValidSQLite, cellPageExpiredSQLite}

// pageInstance is the server a page cell asks.
func (b *bench) pageInstance(name string) *instance {
	if name == cellPageValidSQLite || name == cellPageExpiredSQLite {
		return b.sqlite
	}
	return b.main
}

// preparePages readies the page cells on inst. Each worker needs a browser of its own (a silent
// refresh rotates its chain), and each page user has exactly pageDevicesPerUser devices, so there
// are as many page users as it takes: each created with the CLI (an account_created event), signed
// in on its devices over HTTP from a browser's user agent (a signed_in event each) and refused
// pageEvents - pageDevicesPerUser wrong passwords (a sign_in_failed event each), which makes at
// least pageEvents events. The browsers are interleaved over the users. Then each browser gets
// an expired access token of its own session (expireAccess), and each user's page is checked:
// every device and the newest pageEvents events shown.
func (b *bench) preparePages(ctx context.Context, inst *instance) error {
	browsers := max(slices.Max(b.opts.pageWorkers), b.opts.stormReaders)
	users := (browsers + pageDevicesPerUser - 1) / pageDevicesPerUser
	b.log("creating %d page users with %d devices and %d events each on %s", users, pageDevicesPerUser, pageEvents, inst.server.URL)
	perUser := make([][]*device, users)
	for u := range users {
		acc := account{email: fmt.Sprintf("pages-%d@example.com", u+1), password: "pages password " + strconv.Itoa(u+1)}
		if err := createUser(ctx, inst.setup, acc, fmt.Sprintf("Pages %d", u+1)); err != nil {
			return err
		}
		var err error
		if perUser[u], err = inst.api.signInDevices(ctx, []account{acc}, fmt.Sprintf("browser-%d", u+1), pageDevicesPerUser, browserUA); err != nil {
			return err
		}
		wrong := account{email: acc.email, password: "not the password"}
		for i := range pageEvents - pageDevicesPerUser {
			ans, err := inst.api.loginAs(ctx, wrong, fmt.Sprintf("stranger-%d-%02d", u+1, i), browserUA)
			if err != nil {
				return err
			}
			if ans.status != http.StatusUnauthorized {
				return fmt.Errorf("a wrong password for %s: status %d, want 401: %s", acc.email, ans.status, ans.body)
			}
		}
	}
	inst.pageDevices = nil
	for i := range pageDevicesPerUser {
		for u := range users {
			inst.pageDevices = append(inst.pageDevices, perUser[u][i])
		}
	}
	if err := b.expireAccess(ctx, inst); err != nil {
		return fmt.Errorf("page browsers on %s: %w", inst.server.URL, err)
	}
	for u := range users {
		if err := waitForPage(ctx, inst.api, perUser[u][0]); err != nil {
			return err
		}
	}
	return nil
}

// expireAccess gives each page browser of inst an access token of its own session that has
// expired: its chain is refreshed once by an auth.Service on the instance's database and the
// server's keys whose clock runs behind by the access lifetime and a minute (auth.Deps.Now). The
// token was signed for that session by the server's key and has really expired; the browser
// presents it in the expired cells, with its refresh cookie, as one whose access cookie went
// stale while the page sat open.
func (b *bench) expireAccess(ctx context.Context, inst *instance) error {
	behind := b.cfg.accessTTL + time.Minute
	past, err := openDirect(inst.setup.databaseURL, b.setup.keyDir, inst.server.URL, b.cfg, func() time.Time { return time.Now().Add(-behind) })
	if err != nil {
		return err
	}
	defer past.close()
	for _, d := range inst.pageDevices {
		presented := d.refresh
		issued, err := past.svc.Refresh(ctx, presented, auth.Client{DeviceID: d.id, UserAgent: browserUA, IP: "127.0.0.1"})
		if err != nil {
			return fmt.Errorf("refresh browser %s with a clock %s behind: %w", d.id, behind, err)
		}
		d.rotated(presented, issued.RefreshToken, "")
		d.expiredAccess = issued.AccessToken
	}
	return nil
}

// waitForPage loads the devices page of d's user until it shows every device and event (failed
// sign-ins are recorded just after their answer); it also gives d its CSRF cookie.
func waitForPage(ctx context.Context, a *api, d *device) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		presented := d.refresh
		ans, err := a.devicesPage(ctx, d, d.expiredAccess)
		if err != nil {
			return err
		}
		followChain(d, presented, ans)
		devices, events := pageRows(ans.body)
		switch {
		case ans.status == http.StatusOK && devices == pageDevicesPerUser && events == pageEvents:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("GET /devices for browser %s: status %d, %d devices and %d events shown, want 200, %d and %d",
				d.id, ans.status, devices, events, pageDevicesPerUser, pageEvents)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pageRows counts the device rows and the security events a devices page shows.
func pageRows(body []byte) (devices, events int) {
	return bytes.Count(body, []byte(`<li class="device card`)), bytes.Count(body, []byte(`<li class="event`))
}

// pageOK tells whether a devices page answer is the whole page of a page user.
func pageOK(ans answer) bool {
	devices, events := pageRows(ans.body)
	return ans.status == http.StatusOK && devices == pageDevicesPerUser && events == pageEvents
}

// devicesPage is GET /devices as the browser d sends it: its device, CSRF and refresh cookies and
// the access cookie given. A CSRF cookie the server sets is kept.
func (a *api) devicesPage(ctx context.Context, d *device, access string) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+pageRoute, nil)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("User-Agent", browserUA)
	req.Header.Set("Accept", "text/html")
	req.AddCookie(&http.Cookie{Name: deviceCookie, Value: d.id})
	req.AddCookie(&http.Cookie{Name: refreshCookie, Value: d.refresh})
	req.AddCookie(&http.Cookie{Name: accessCookie, Value: access})
	if d.csrf != "" {
		req.AddCookie(&http.Cookie{Name: csrfCookie, Value: d.csrf})
	}
	ans, err := a.do(req)
	if ans.csrf != "" {
		d.csrf = ans.csrf
	}
	return ans, err
}

// followChain records what a page answer did to the browser's chain: a new refresh cookie (the
// silent refresh) moved it on, and it reports whether the answer also carried the new access
// cookie; a cleared refresh cookie is the server refusing presented for good.
func followChain(d *device, presented string, ans answer) bool {
	switch {
	case ans.refreshCleared:
		d.refused(presented)
		return false
	case ans.refresh == "" || ans.refresh == presented:
		return false
	}
	d.rotated(presented, ans.refresh, ans.access)
	return ans.access != ""
}

// pageWithAccess loads the page with the browser's valid access cookie: it is good when it is the
// whole page and the server did not refresh.
func (a *api) pageWithAccess(ctx context.Context, d *device) outcome {
	presented := d.refresh
	ans, err := a.devicesPage(ctx, d, d.access)
	if err != nil {
		return failed
	}
	refreshed := followChain(d, presented, ans)
	if refreshed || ans.refreshCleared || !pageOK(ans) {
		return failed
	}
	return succeeded
}

// pageWithExpiredAccess loads the page with the browser's expired access cookie: it is good when
// the server refreshed silently (new refresh and access cookies) and answered the whole page.
func (a *api) pageWithExpiredAccess(ctx context.Context, d *device) outcome {
	presented := d.refresh
	ans, err := a.devicesPage(ctx, d, d.expiredAccess)
	if err != nil {
		return failed
	}
	if !followChain(d, presented, ans) || !pageOK(ans) {
		return failed
	}
	return succeeded
}

// pageValidOp: each worker loads the page as its own browser, with a valid access cookie.
func pageValidOp(inst *instance) op {
	return func(ctx context.Context, w, _ int) outcome {
		return inst.api.pageWithAccess(ctx, inst.pageDevices[w])
	}
}

// pageExpiredOp: each worker loads the page as its own browser, with its expired access cookie,
// so that every request takes the silent refresh.
func pageExpiredOp(inst *instance) op {
	return func(ctx context.Context, w, _ int) outcome {
		return inst.api.pageWithExpiredAccess(ctx, inst.pageDevices[w])
	}
}

// freshAccess refreshes the first workers page browsers of inst once over HTTP, so that each
// holds an access token the server signed just now (valid for the cell, whatever ran before, and
// remembered as verified, as a browser's cookie from its last refresh is). It returns how many
// of those refreshes failed.
func (b *bench) freshAccess(ctx context.Context, inst *instance, workers int) int {
	failures := 0
	for _, d := range inst.pageDevices[:workers] {
		if inst.api.refresh(ctx, d) != succeeded {
			failures++
		}
	}
	return failures
}

// pageCell is warmThenDrive for a page cell on inst, with the server's time rendering the page
// and its time on the route's requests, read from /metrics just before and after the measured
// part. failures are those of the cell's preparation, counted with its warm-up's.
func (b *bench) pageCell(ctx context.Context, name string, workers int, d time.Duration, inst *instance, do op, failures int) (cell, error) {
	pid := inst.server.PID()
	warmupErrors := b.warmUp(ctx, name, workers, pid, do)
	before, err := inst.api.routeTimes(ctx, pageRoute)
	if err != nil {
		return cell{}, err
	}
	c := drive(ctx, name, workers, d, pid, do)
	after, err := inst.api.routeTimes(ctx, pageRoute)
	if err != nil {
		return cell{}, err
	}
	c.warmupErrors, c.rssKiB = warmupErrors+failures, rssKiB(pid)
	c.rendered, c.handled = after.rendered-before.rendered, after.handled-before.handled
	return c, nil
}

// routeTime is what the server's /metrics says of one route so far.
type routeTime struct {
	rendered time.Duration // gatehouse_page_render_seconds_total
	handled  time.Duration // the sum of gatehouse_http_request_duration_seconds, every method and code
}

// routeTimes scrapes the server's /metrics for route's render time and request time.
func (a *api) routeTimes(ctx context.Context, route string) (routeTime, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/metrics", nil)
	if err != nil {
		return routeTime{}, err
	}
	ans, err := a.do(req)
	if err != nil {
		return routeTime{}, err
	}
	if ans.status != http.StatusOK {
		return routeTime{}, fmt.Errorf("GET /metrics: status %d", ans.status)
	}
	return parseRouteTimes(ans.body, route), nil
}

// parseRouteTimes reads route's render and request seconds from a Prometheus text exposition.
func parseRouteTimes(exposition []byte, route string) routeTime {
	var t routeTime
	label := `route="` + route + `"`
	sc := bufio.NewScanner(bytes.NewReader(exposition))
	for sc.Scan() {
		line := sc.Text()
		series, value, ok := strings.Cut(line, " ")
		if !ok || !strings.Contains(series, label) {
			continue
		}
		seconds, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		d := time.Duration(seconds * float64(time.Second))
		switch {
		case strings.HasPrefix(series, "gatehouse_page_render_seconds_total{"):
			t.rendered += d
		case strings.HasPrefix(series, "gatehouse_http_request_duration_seconds_sum{"):
			t.handled += d
		}
	}
	return t
}

// pageShareTarget: GET /devices with a valid access cookie at 16 workers ≥ 25% of the bearer
// check's rate (GET /api/me, cached) at 16 workers in the same run.
var pageShareTarget = target{limit: 0.25, atLeast: true}

// pageTargetWorkers is the concurrency of the page goal.
const pageTargetWorkers = 16

// printPages gives the page cells with the share of the server's time on /devices spent
// rendering, and the page goal.
func (r *report) printPages(w io.Writer) {
	fmt.Fprintf(w, "\n## Pages: GET /devices of a user with %d devices and %d events\n\n", pageDevicesPerUser, pageEvents)
	fmt.Fprintln(w, "| cell | workers | req/s | p50 | p99 | errors | rendering / server time on /devices | CPU cores: server / bench / machine |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, c := range r.rows() {
		if !slices.Contains(pageCells, c.name) {
			continue
		}
		share := "-"
		if c.rendered > 0 && c.handled > 0 {
			share = percent(c.rendered.Seconds() / c.handled.Seconds())
		}
		fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %s | %s | %s |\n", c.name, c.workers, c.rate(), ms(c.p50), ms(c.p99),
			errorsOf([]cell{c}), share, cpuText(c))
	}
	fmt.Fprintln(w, "\nEach worker is a browser of its own (its device, CSRF and refresh cookies). Valid: the access cookie the")
	fmt.Fprintln(w, "server set at a refresh just before the cell. Expired: an access token of the browser's own session, signed")
	fmt.Fprintln(w, "with the server's key by a service whose clock ran behind by the access lifetime; the server refreshes")
	fmt.Fprintln(w, "silently on every request (new refresh and access cookies), and the browser keeps its new refresh cookie.")
	fmt.Fprintln(w, "Rendering: gatehouse_page_render_seconds_total over the sum of gatehouse_http_request_duration_seconds for")
	fmt.Fprintln(w, "/devices, both read from the server's /metrics before and after the cell. Both are wall time in the server:")
	fmt.Fprintln(w, "with more workers than cores, a request's time also holds its waits (for a core, for a database connection).")
	page, pageOK := r.measured[cellKey{cellPageValid, pageTargetWorkers}]
	me, meOK := r.measured[cellKey{cellMeCached, pageTargetWorkers}]
	if !pageOK || !meOK {
		fmt.Fprintf(w, "\nGoal of issue 16, GET /devices with a valid cookie at %d workers ≥ %s of GET /api/me (bearer, cached): no verdict, the run has no %d-worker cells of both.\n",
			pageTargetWorkers, percent(pageShareTarget.limit), pageTargetWorkers)
		return
	}
	c := comparison{metric: rateOf, format: percent, repeats: []pair{{of: merge(page), over: merge(me)}}}
	fmt.Fprintf(w, "\nGoal of issue 16, GET /devices with a valid cookie at %d workers (%.0f/s) ≥ %s of GET /api/me (bearer, cached) at %d workers in this run (%.0f/s): %s, %s.\n",
		pageTargetWorkers, merge(page).rate(), percent(pageShareTarget.limit), pageTargetWorkers, merge(me).rate(), c.ratioText(), c.verdict(pageShareTarget))
}
