package handlers_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"gatehouse/models/testdb"
)

// A scenario is one request through the real app by one browser of a household, with what it
// must answer, what a person sees on the page, and what it changes in the database. A table of
// them reads as the contract of a route; a test that is a story (sign in here, then there, move
// the clock, look again) stays code.
//
// Any string of a scenario may name a value known only when it runs: {laptop} and {phone} are
// the household's device sessions, {url} the server, {NAME.csrf} the CSRF token client NAME last
// loaded, and {NAME} the device session of a browser added with stage.signIn.
type scenario struct {
	name string

	// Who sends it, and what happens first.
	as     string                    // "laptop" or "phone" (Ann's), "stranger" (a new browser) or one added to the stage
	from   string                    // a page loaded first, which must answer 200: a form carries its CSRF token
	before func(s *stage, c *client) // anything else to do first, after from is loaded

	// The request.
	method string // GET, or POST when form or json is set
	path   string
	form   url.Values // posted with the CSRF token of the from page, unless noCSRF
	json   any
	header map[string]string
	noCSRF bool // post the form exactly as given: its own _csrf, if any, is the only token

	// The answer.
	status   int
	location string          // where a 303 goes
	page     page            // what the answer shows
	cookies  map[string]bool // cookie → whether the answer sets it (clearing it counts)
	landing  *page           // what the page the 303 leads to shows, loaded by the same client

	// Afterwards.
	cleared   []string         // cookies the client no longer holds
	signedIn  []string         // clients that can still load /devices
	signedOut []string         // clients that are sent to sign in instead
	unchanged bool             // no row changed: dbState and every device name are as before
	changes   map[string]int64 // COUNT(*) query → how much the request changed it by

	// check says what a table cannot, after everything else.
	check func(t *testing.T, s *stage, c *client, res *response)
}

// page is what a person sees in an HTML answer, found with goquery selectors.
type page struct {
	heading string            // the text of main h1
	text    map[string]string // selector → the trimmed text of what it finds
	count   map[string]int    // selector → how many elements it finds
	value   map[string]string // selector of one input → its value attribute
	blank   []string          // selectors of inputs that must come back with no value attribute
	fields  map[string]string // selector of one input → the error shown next to it, "" for none
	has     []string          // fragments the raw body must hold
	lacks   []string          // and must not
}

// stage is a household that scenarios run against, with more browsers by name.
type stage struct {
	*household
	clients  map[string]*client
	sessions map[string]string // client name → its device session, for {name}
}

func newStage(t *testing.T, db *testdb.DB, opts ...serverOption) *stage {
	t.Helper()
	return stageOf(newHousehold(t, db, opts...))
}

// stageOf is a stage over a household built by hand.
func stageOf(h *household) *stage {
	return &stage{household: h, clients: map[string]*client{"laptop": h.laptop, "phone": h.phone}, sessions: map[string]string{}}
}

// signIn signs email in on a new browser, which scenarios then name as name, and its device
// session as {name}.
func (s *stage) signIn(t *testing.T, name, email, ua string) *client {
	t.Helper()
	c := s.ts.browser(t, ua)
	c.pageSignIn(email)
	s.clients[name], s.sessions[name] = c, s.ts.sessionOf(t, c)
	return c
}

// client is a named client, pointed at the running (sub)test.
func (s *stage) client(t *testing.T, name string) *client {
	t.Helper()
	if name == "stranger" {
		return s.ts.newClient(t)
	}
	c, ok := s.clients[name]
	if !ok {
		t.Fatalf("no client named %q", name)
	}
	c.t = t
	return c
}

var placeholder = regexp.MustCompile(`\{[a-z][A-Za-z0-9]*(\.csrf)?\}`)

// expand replaces the {names} in str.
func (s *stage) expand(t *testing.T, str string) string {
	t.Helper()
	return placeholder.ReplaceAllStringFunc(str, func(p string) string {
		name := p[1 : len(p)-1]
		if who, ok := strings.CutSuffix(name, ".csrf"); ok {
			return s.client(t, who).csrf
		}
		switch name {
		case "laptop":
			return s.laptopSID
		case "phone":
			return s.phoneSID
		case "url":
			return s.ts.URL
		}
		v, ok := s.sessions[name]
		if !ok {
			t.Fatalf("nothing is named %s", p)
		}
		return v
	})
}

func (s *stage) expandAll(t *testing.T, m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[s.expand(t, k)] = s.expand(t, v)
	}
	return out
}

// run plays each scenario as a subtest named for it, in order, on the same stage.
func (s *stage) run(t *testing.T, cases []scenario) {
	t.Helper()
	for _, sc := range cases {
		t.Run(sc.name, func(t *testing.T) { s.play(t, sc) })
	}
}

// play sends one scenario's request and checks everything it says, in the order a person would
// notice: the answer, the rows, the page a redirect leads to, then the other browsers.
func (s *stage) play(t *testing.T, sc scenario) {
	if sc.status == 0 || sc.as == "" {
		t.Fatal("a scenario needs as and status")
	}
	for _, c := range s.clients {
		c.t = t
	}
	c := s.client(t, sc.as)
	if sc.from != "" {
		if res := c.get(s.expand(t, sc.from)); res.StatusCode != http.StatusOK {
			t.Fatalf("loading %s first: %d to %q", sc.from, res.StatusCode, res.Header.Get("Location"))
		}
	}
	if sc.before != nil {
		sc.before(s, c)
	}
	before := s.measure(t, sc)
	res := s.send(t, c, sc)
	s.expectAnswer(t, sc, res)
	s.expectEffect(t, sc, before)
	if sc.landing != nil {
		landing := c.get(res.Header.Get("Location"))
		if landing.StatusCode != http.StatusOK {
			t.Fatalf("the redirect to %s answers %d", res.Header.Get("Location"), landing.StatusCode)
		}
		s.expectShows(t, *sc.landing, landing)
	}
	s.expectClients(t, sc, c)
	if sc.check != nil {
		sc.check(t, s, c, res)
	}
}

func (s *stage) expectAnswer(t *testing.T, sc scenario, res *response) {
	t.Helper()
	req := res.Request.Method + " " + res.Request.URL.Path
	if res.StatusCode != sc.status {
		t.Fatalf("%s: status %d, want %d; Location %q; body: %.500s", req, res.StatusCode, sc.status, res.Header.Get("Location"), res.body)
	}
	if loc := res.Header.Get("Location"); loc != s.expand(t, sc.location) {
		t.Fatalf("%s: Location %q, want %q", req, loc, s.expand(t, sc.location))
	}
	if !sc.page.empty() {
		s.expectShows(t, sc.page, res)
	}
	for _, name := range sortedKeys(sc.cookies) {
		if set := res.cookie(name) != nil; set != sc.cookies[name] {
			t.Errorf("%s: the answer sets cookie %s: %v, want %v", req, name, set, sc.cookies[name])
		}
	}
}

// expectClients checks the cookies c holds afterwards, and who is signed in.
func (s *stage) expectClients(t *testing.T, sc scenario, c *client) {
	t.Helper()
	for _, name := range sc.cleared {
		if v := c.cookieValue(name); v != "" {
			t.Errorf("the client still holds cookie %s", name)
		}
	}
	for _, name := range sc.signedIn {
		res := s.client(t, name).get("/devices")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s is no longer signed in: /devices answers %d to %q", name, res.StatusCode, res.Header.Get("Location"))
		}
		s.expectShows(t, page{heading: "Your devices"}, res)
	}
	for _, name := range sc.signedOut {
		if res := s.client(t, name).get("/devices"); !signInRedirect(res) {
			t.Fatalf("%s is still signed in: /devices answers %d to %q", name, res.StatusCode, res.Header.Get("Location"))
		}
	}
}

// send sends the scenario's request from c.
func (s *stage) send(t *testing.T, c *client, sc scenario) *response {
	t.Helper()
	method, path := sc.method, s.expand(t, sc.path)
	if method == "" {
		method = http.MethodGet
		if sc.form != nil || sc.json != nil {
			method = http.MethodPost
		}
	}
	header := s.expandAll(t, sc.header)
	switch {
	case sc.json != nil:
		b, err := json.Marshal(sc.json)
		if err != nil {
			t.Fatal(err)
		}
		header["Content-Type"] = "application/json"
		return c.do(method, path, strings.NewReader(s.expand(t, string(b))), header)
	case method == http.MethodPost:
		values := url.Values{}
		for k, vs := range sc.form {
			for _, v := range vs {
				values.Add(k, s.expand(t, v))
			}
		}
		if !sc.noCSRF && values.Get("_csrf") == "" && c.csrf != "" {
			values.Set("_csrf", c.csrf)
		}
		header["Content-Type"] = "application/x-www-form-urlencoded"
		return c.do(method, path, strings.NewReader(values.Encode()), header)
	}
	return c.do(method, path, nil, header)
}

// snapshot is what the scenario's database expectations compare.
type snapshot struct {
	state  string
	counts map[string]int64
}

func (s *stage) measure(t *testing.T, sc scenario) snapshot {
	t.Helper()
	snap := snapshot{counts: map[string]int64{}}
	if sc.unchanged {
		if len(sc.changes) != 0 {
			t.Fatal("a scenario changes nothing or some rows, not both")
		}
		snap.state = s.ts.dbState(t) + ",names=" + strings.Join(s.deviceNames(t), ";")
	}
	for q := range sc.changes {
		snap.counts[q] = s.ts.db.Count(t, s.expand(t, q))
	}
	return snap
}

func (s *stage) expectEffect(t *testing.T, sc scenario, before snapshot) {
	t.Helper()
	after := s.measure(t, sc)
	if after.state != before.state {
		t.Errorf("the request changed rows: %s, was %s", after.state, before.state)
	}
	for _, q := range sortedKeys(sc.changes) {
		if d := after.counts[q] - before.counts[q]; d != sc.changes[q] {
			t.Errorf("%s went from %d to %d: changed by %+d, want %+d", s.expand(t, q), before.counts[q], after.counts[q], d, sc.changes[q])
		}
	}
}

// deviceNames is every device session with its name, which dbState does not hold.
func (s *stage) deviceNames(t *testing.T) []string {
	t.Helper()
	var names []string
	if err := s.ts.db.Store.DB().Raw("SELECT id || '=' || device_name FROM device_sessions ORDER BY id").Scan(&names).Error; err != nil {
		t.Fatal(err)
	}
	return names
}

func (p page) empty() bool {
	return p.heading == "" && len(p.text) == 0 && len(p.count) == 0 && len(p.value) == 0 && len(p.blank) == 0 &&
		len(p.fields) == 0 && len(p.has) == 0 && len(p.lacks) == 0
}

// expectShows checks that res is an HTML page that shows p.
func (s *stage) expectShows(t *testing.T, p page, res *response) {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("Content-Type %q, want an HTML page; body: %.300s", ct, res.body)
	}
	doc := res.Doc(t)
	if h := text(doc.Find("main h1").First()); p.heading != "" && h != p.heading {
		t.Errorf("heading %q, want %q", h, p.heading)
	}
	texts, values, fields := s.expandAll(t, p.text), s.expandAll(t, p.value), s.expandAll(t, p.fields)
	for _, sel := range sortedKeys(texts) {
		if got := text(doc.Find(sel)); got != texts[sel] {
			t.Errorf("%s shows %q, want %q", sel, got, texts[sel])
		}
	}
	for _, sel := range sortedKeys(p.count) {
		if n := doc.Find(s.expand(t, sel)).Length(); n != p.count[sel] {
			t.Errorf("%d of %s, want %d", n, s.expand(t, sel), p.count[sel])
		}
	}
	for _, sel := range sortedKeys(values) {
		if got, _ := one(t, doc, sel).Attr("value"); got != values[sel] {
			t.Errorf("%s has value %q, want %q", sel, got, values[sel])
		}
	}
	for _, sel := range p.blank {
		if _, has := one(t, doc, s.expand(t, sel)).Attr("value"); has {
			t.Errorf("%s is sent back with a value", sel)
		}
	}
	for _, sel := range sortedKeys(fields) {
		if got := fieldError(t, doc.Selection, sel); got != fields[sel] {
			t.Errorf("error next to %s: %q, want %q", sel, got, fields[sel])
		}
	}
	for _, frag := range p.has {
		if !bytes.Contains(res.body, []byte(s.expand(t, frag))) {
			t.Errorf("the page lacks %q", frag)
		}
	}
	for _, frag := range p.lacks {
		if bytes.Contains(res.body, []byte(s.expand(t, frag))) {
			t.Errorf("the page shows %q", frag)
		}
	}
}

// one is the single element sel finds.
func one(t *testing.T, doc *goquery.Document, sel string) *goquery.Selection {
	t.Helper()
	found := doc.Find(sel)
	if found.Length() != 1 {
		t.Fatalf("want one %s, found %d", sel, found.Length())
	}
	return found
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// devicesList is the rows of the devices page, and rowOf the row of device session sid (which
// may be a placeholder such as "{phone}").
const devicesList = `ul[aria-label="Devices"] > li`

func rowOf(sid string) string {
	return devicesList + `:has(form[action="/devices/` + sid + `/rename"])`
}

// otherRows are the rows of every device session but sid.
func otherRows(sid string) string {
	return devicesList + `:not(:has(form[action="/devices/` + sid + `/rename"]))`
}
