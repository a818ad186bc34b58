package auth_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/models"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/clock"
)

// TestRotationProperties runs random interleavings of what devices, their owners and an operator
// do to device sessions: refresh, a retry of the just-rotated token within the grace window, two
// tabs refreshing at once, replay of an old token, presenting a refused token again, verifying
// access tokens, signing a device out, signing out everywhere and changing the password (both
// bump token_version), signing in again, disabling a user, and moving the clock by seconds, hours,
// days or to the edge of a lifetime (access TTL, refresh idle TTL, session max age). One goroutine
// drives each device (four users with two devices each), on two service instances sharing the
// database. After every step it checks all of the acting user's families against the database:
//
//   - the family's token history (its rows of refresh_tokens) holds exactly one token more than
//     the rotations its device was told of: a fork, or a rotation no client received, adds one;
//   - the family's live token is the one its device holds, and every client of a refresh (each
//     of two tabs) holds that token or got a clean refusal;
//   - the lifetimes are the model's: the session expires SessionMaxAge after its sign-in, and
//     each refresh token RefreshIdleTTL after it was issued, capped by the session's expiry; a
//     token past its lifetime is refused with ErrTokenExpired, an access token past AccessTTL
//     too, and an access token of a session past its max age with ErrSessionRevoked;
//   - a family is revoked once something certainly revoked it, and not while nothing could have;
//     a family that is over refuses its device's token cleanly, and no refused token ever works
//     again (they are presented again at random and all of them at the end);
//   - nothing refreshes, and no access token verifies, once its session was revoked;
//   - a retry within grace while the successor is unused returns that same successor and never
//     signs the device out; neither do two tabs refreshing at once;
//   - a replay revokes the family and records a token_reused event;
//   - access tokens issued before a token_version bump are rejected by Verify;
//   - a disabled user has every session revoked, and sign-in and refresh are refused afterwards.
//
// Each device's choices come from a seeded math/rand; the seed is logged and in every failure,
// and GATEHOUSE_PROPERTY_SEED replays the same choices (the goroutines' interleaving still varies).
//
// GATEHOUSE_PROPERTY_ROUNDS (default 1) runs that many rounds of propOperations one after the
// other on each database, each with its own users and the seed of the one before plus one, so
// that CI can look longer for rare interleavings (a deadlock between two of these operations once
// showed up here). A failure names its round's seed: replay it with GATEHOUSE_PROPERTY_SEED alone.
func TestRotationProperties(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GATEHOUSE_PROPERTY_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("GATEHOUSE_PROPERTY_SEED: %v", err)
		}
	}
	rounds := 1
	if s := os.Getenv("GATEHOUSE_PROPERTY_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("GATEHOUSE_PROPERTY_ROUNDS must be a whole number of at least 1, got %q", s)
		}
		rounds = n
	}
	t.Logf("seed %d, %d round(s) (replay with GATEHOUSE_PROPERTY_SEED=%d)", seed, rounds, seed)
	runRounds := func(t *testing.T, db *testdb.DB, path propRefreshPath) {
		for round := range rounds {
			newPropHarness(t, db, seed+uint64(round), round, path).run()
			if t.Failed() {
				return
			}
		}
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) { runRounds(t, db, propOneStatement) })
	t.Run("sqlite-batched", func(t *testing.T) { runRounds(t, testdb.SQLite(t), propBatched) })
	if testdb.PostgresURL(t) != "" {
		// The same rounds with every refresh decided in a transaction, as on SQLite, and with
		// refreshes rotated in shared batches: every path of PostgreSQL is held to the same rules.
		t.Run("postgres-transactional", func(t *testing.T) { runRounds(t, testdb.Postgres(t), propTransactional) })
		t.Run("postgres-batched", func(t *testing.T) { runRounds(t, testdb.Postgres(t), propBatched) })
	}
}

// propRefreshPath is the way the instances of a round rotate refresh tokens.
type propRefreshPath int

const (
	propOneStatement  propRefreshPath = iota // the guarded statement; a transaction when it refuses
	propTransactional                        // every refresh decided in a transaction
	propBatched                              // concurrent refreshes of an instance share one commit
)

const (
	propUsers          = 4
	propDevicesPerUser = 2
	propOperations     = 400 // in all, shared out among the devices
	// propStepsWhenDisabled is how many steps a device of the disabled user takes once the
	// disable is done (each checks that nothing works any more); then it stops.
	propStepsWhenDisabled = 4
)

// propHarness is the system under test and the model of what each party knows about it. The
// model is only what the test can know for sure from the order of calls: every operation takes a
// sequence number when it starts and another when it returns.
type propHarness struct {
	t     *testing.T
	db    *testdb.DB
	seed  uint64
	clock *clock.Manual
	insts []*auth.Service
	seq   atomic.Uint64
	plan  propPlan
	// batched: the instances batch refreshes, and a round must see some batches shared
	batched bool

	// timeMu keeps the clock still during an operation: clock advances take it for writing,
	// operations for reading, so that "within grace" or "expired" means the same to the test and
	// the service. Lock order: timeMu, then propSession.mu (of one user, in the order of
	// propUser.sessions), then mu.
	timeMu sync.RWMutex

	mu     sync.Mutex // guards everything below, and the fields of users and sessions marked so
	users  []*propUser
	tokens []*accessRecord
	stats  map[string]int

	failed atomic.Bool
}

// propPlan is the one disable of a round: device by disables user at its step at.
type propPlan struct {
	user *propUser
	by   *propDevice
	at   int
}

type propUser struct {
	email, id string

	// Under propHarness.mu.
	sessions []*propSession
	bumps    []*versionBump
	disable  *versionBump // the disable, once it started
	refused  []refusedToken
}

// versionBump is a sign-out-everywhere, a password change or a disable: it bumps token_version
// and revokes every session of the user but keep (the session a password change starts).
type versionBump struct {
	start, end uint64 // end is 0 while it runs
	keep       *propSession
	password   bool // a password change: a sign-in that overlaps it may fail
	disable    bool // a disable: every session, whenever it started, is revoked once it is done
}

// refusedToken is a refresh token that was refused for good (its family revoked, or past its
// lifetime): it must never work again.
type refusedToken struct {
	token  string
	family *propSession
}

type propSession struct {
	id         string
	user       *propUser
	device     string
	start, end uint64    // the sign-in that created it
	expires    time.Time // the absolute lifetime: SessionMaxAge after the sign-in

	// Under propHarness.mu.
	signOutStarted bool   // someone started something that may revoke this session
	revokedBy      uint64 // a sequence number by which it is certainly revoked; 0 while not known

	// The family as its device knows it. Only the goroutine of that device rotates the family,
	// and it holds mu from before it presents a token until the model has caught up, so a check
	// (from any goroutine, holding mu) finds the database and the model in step.
	mu           sync.Mutex
	live, prev   string    // the device's refresh token, and the one it rotated from
	rotatedAt    time.Time // when prev was rotated
	older        []string  // tokens rotated before prev: their successors were used
	rotations    int       // rotations the device was told of
	tokenExpires time.Time // the live token's idle expiry, capped by expires
	over         bool      // its live token was refused (revoked or expired): the device must sign in
}

type accessRecord struct {
	token      string
	session    *propSession
	start, end uint64
	expires    time.Time
	fromBump   *versionBump // the password change that issued it, which it is not older than
}

type propDevice struct {
	id      string
	user    *propUser
	session *propSession
	access  *accessRecord
	retired []*propSession // this device's earlier sessions, all revoked
	rnd     *rand.Rand
	recent  []string // the last operations, for failure messages
}

// newPropHarness sets up one round of the test on db, with users new to the database.
func newPropHarness(t *testing.T, db *testdb.DB, seed uint64, round int, path propRefreshPath) *propHarness {
	e := newEnv(t, db)
	keyDir := t.TempDir()
	h := &propHarness{t: t, db: db, seed: seed, clock: e.clock, stats: map[string]int{}, batched: path == propBatched,
		insts: []*auth.Service{newService(t, db, e.clock, keyDir), newService(t, db, e.clock, keyDir)}}
	for i, in := range h.insts {
		switch path {
		case propTransactional:
			auth.ForceTransactionalRefresh(in)
		case propBatched:
			// The first instance runs one batch at a time (the most sharing), the second as
			// configured (batches in flight at once, which skip each other's rows).
			auth.UseRefreshBatches(in)
			if i == 0 {
				auth.SetRefreshBatchLimits(in, 1, 64)
			}
		}
	}
	for i := range propUsers {
		email := fmt.Sprintf("round%d-user%d@example.com", round, i)
		u, err := h.insts[0].CreateUser(e.ctx, email, "Prop", testPassword)
		if err != nil {
			t.Fatal(err)
		}
		h.users = append(h.users, &propUser{email: email, id: u.ID})
	}
	return h
}

func (h *propHarness) run() {
	var devices []*propDevice
	for i, u := range h.users {
		for j := range propDevicesPerUser {
			devices = append(devices, &propDevice{id: fmt.Sprintf("device-%d-%d", i, j), user: u,
				rnd: rand.New(rand.NewPCG(h.seed, uint64(len(devices))))})
		}
	}
	steps := propOperations / len(devices)
	plan := rand.New(rand.NewPCG(h.seed, 1<<32))
	h.plan = propPlan{user: h.users[plan.IntN(len(h.users))], by: devices[plan.IntN(len(devices))], at: steps/4 + plan.IntN(steps/2)}
	for _, d := range devices {
		h.timeMu.RLock()
		h.signIn(d)
		h.timeMu.RUnlock()
	}
	var wg sync.WaitGroup
	for _, d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			whenDisabled := 0
			for i := range steps {
				if h.failed.Load() || whenDisabled == propStepsWhenDisabled {
					return
				}
				if h.disableDone(d.user) {
					whenDisabled++
				}
				h.step(d, i)
			}
		}()
	}
	wg.Wait()
	if !h.failed.Load() {
		h.finalChecks(devices)
	}
	h.t.Logf("seed %d: %d operations; outcomes: %v", h.seed, propOperations, h.stats)
	if h.batched {
		var all auth.RefreshBatchStats
		for _, in := range h.insts {
			s := in.RefreshBatchStats()
			all.Batches, all.Shared, all.Members, all.Failed = all.Batches+s.Batches, all.Shared+s.Shared, all.Members+s.Members, all.Failed+s.Failed
		}
		h.t.Logf("seed %d: refresh batches %+v", h.seed, all)
		if all.Shared == 0 {
			h.t.Errorf("seed %d: no refresh batch of the round had more than one member: concurrent refreshes did not share a commit", h.seed)
		}
	}
}

// step does one random thing on device d, then checks every family of the user it acted on.
func (h *propHarness) step(d *propDevice, i int) {
	if d == h.plan.by && i == h.plan.at {
		h.disable(d, h.plan.user)
		return
	}
	if d.rnd.IntN(100) < 12 {
		h.advance(d)
		return
	}
	h.timeMu.RLock()
	defer h.timeMu.RUnlock()
	defer h.checkUser(d, d.user)
	if h.disableDone(d.user) {
		h.whenDisabled(d)
		return
	}
	if d.session == nil || h.knownOver(d.session) {
		h.signIn(d)
		return
	}
	switch n := d.rnd.IntN(100); {
	case n < 26:
		h.refresh(d)
	case n < 38:
		h.retry(d)
	case n < 44:
		h.tabs(d)
	case n < 56:
		h.replay(d)
	case n < 68:
		h.verify(d)
	case n < 76:
		h.signOutDevice(d)
	case n < 80:
		h.signOutEverywhere(d)
	case n < 84:
		h.changePassword(d)
	case n < 90:
		h.presentRefused(d)
	default:
		h.signIn(d)
	}
}

// whenDisabled: every device of a disabled user finds that nothing works any more.
func (h *propHarness) whenDisabled(d *propDevice) {
	switch d.rnd.IntN(4) {
	case 0:
		h.signIn(d)
	case 1:
		if d.session != nil {
			h.refresh(d)
		}
	case 2:
		if d.access != nil {
			h.verify(d)
		}
	default:
		h.presentRefused(d)
	}
}

func (h *propHarness) inst(d *propDevice) *auth.Service { return h.insts[d.rnd.IntN(len(h.insts))] }

// client is how d presents itself: with its device id, or with none (both must work).
func (h *propHarness) client(d *propDevice) auth.Client {
	if d.rnd.IntN(2) == 0 {
		return auth.Client{IP: "192.0.2.10"}
	}
	return auth.Client{DeviceID: d.id, IP: "192.0.2.10"}
}

func (h *propHarness) note(d *propDevice, format string, args ...any) {
	d.recent = append(d.recent, fmt.Sprintf("[%d] ", h.seq.Load())+fmt.Sprintf(format, args...))
	if len(d.recent) > 12 {
		d.recent = d.recent[1:]
	}
}

func (h *propHarness) count(outcome string) {
	h.mu.Lock()
	h.stats[outcome]++
	h.mu.Unlock()
}

func (h *propHarness) fail(d *propDevice, format string, args ...any) {
	h.t.Helper()
	h.failed.Store(true)
	if d == nil {
		h.t.Errorf("seed %d, final checks: %s", h.seed, fmt.Sprintf(format, args...))
		return
	}
	h.t.Errorf("seed %d, %s: %s\nits last operations:\n  %s", h.seed, d.id, fmt.Sprintf(format, args...), strings.Join(d.recent, "\n  "))
}

// advance moves the clock: mostly by seconds (the grace window), sometimes by hours (past the
// access TTL) or days (towards the refresh idle TTL and the session max age), and sometimes to
// just before or exactly at one of the lifetimes of d's tokens, where an off-by-one in "expired"
// would show: its access token's, its refresh token's, its session's.
func (h *propHarness) advance(d *propDevice) {
	var by time.Duration
	var edge time.Time
	switch n := d.rnd.IntN(100); {
	case n < 66:
		steps := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 6 * time.Second, 9 * time.Second, 11 * time.Second, 30 * time.Second, 3 * time.Minute}
		by = steps[d.rnd.IntN(len(steps))]
	case n < 76:
		steps := []time.Duration{testConfig.AccessTTL, testConfig.AccessTTL + time.Second, 2 * time.Hour, 9 * time.Hour}
		by = steps[d.rnd.IntN(len(steps))]
	case n < 84:
		steps := []time.Duration{24 * time.Hour, 3 * 24 * time.Hour, 6 * 24 * time.Hour}
		by = steps[d.rnd.IntN(len(steps))]
	case n < 94:
		edge = h.edge(d)
	default:
		h.liveToTheEnd(d)
		return
	}
	h.timeMu.Lock()
	before := h.clock.Now()
	if by == 0 {
		by = max(edge.Sub(before), time.Second) // another device may have moved past the edge
	}
	now := h.clock.Advance(by)
	h.timeMu.Unlock()
	h.note(d, "clock +%s, to %s", by, now.Format(time.DateTime))
	switch {
	case !edge.IsZero() && now.Equal(edge):
		h.count("clock: to a lifetime's edge")
	case by < testConfig.AccessTTL:
		h.count("clock: seconds")
	case by < 24*time.Hour:
		h.count("clock: hours")
	default:
		h.count("clock: days")
	}
	h.timeMu.RLock()
	defer h.timeMu.RUnlock()
	if d.access != nil {
		h.verifyOne(d, d.access) // right at the edge, when there was one
	}
	h.checkUser(d, d.user)
}

// edge picks a moment at which one of d's lifetimes ends, or the second before it: its access
// token's, its refresh token's or its session's. Half the time it steers towards the session's
// end: the second before the refresh token's end, where a refresh keeps the session going (and,
// past half its max age, is capped by it), and then, once capped, the session's end itself,
// where an access token just issued outlives its session.
func (h *propHarness) edge(d *propDevice) time.Time {
	s := d.session
	ends := []time.Time{s.tokenExpires, s.expires, d.access.expires}
	end := ends[d.rnd.IntN(len(ends))]
	switch {
	case d.rnd.IntN(2) == 0:
	case s.tokenExpires.Equal(s.expires):
		end = s.expires
	default:
		return s.tokenExpires.Add(-time.Second)
	}
	return end.Add(-time.Duration(d.rnd.IntN(2)) * time.Second)
}

// liveToTheEnd: d comes back the second before its refresh token expires, again and again, until
// its session's max age ends it. Each refresh extends the token by the idle lifetime, capped by
// the session's end; the access token of the refresh a second before that end is rejected a
// second later (ErrSessionRevoked), and the refresh token with it (ErrTokenExpired). Other
// devices go on meanwhile: whatever they do to d's session, the model expects.
func (h *propHarness) liveToTheEnd(d *propDevice) {
	for range 4 { // the max age is 30 days, the idle lifetime 14: three refreshes reach the cap
		s := d.session
		if h.knownOver(s) || !h.moveTo(d, s.tokenExpires.Add(-time.Second)) {
			return
		}
		h.acting(d, func() { h.refresh(d) })
		if d.session.tokenExpires.Equal(d.session.expires) && h.clock.Now().Equal(s.expires.Add(-time.Second)) {
			break
		}
	}
	if s := d.session; !h.knownOver(s) && h.moveTo(d, s.expires) {
		h.acting(d, func() { h.verifyOne(d, d.access) })
	}
}

// moveTo moves the clock to t, unless another device moved it there or past it already.
func (h *propHarness) moveTo(d *propDevice, t time.Time) bool {
	h.timeMu.Lock()
	now := h.clock.Now()
	if !now.Before(t) {
		h.timeMu.Unlock()
		return false
	}
	h.clock.Set(t)
	h.timeMu.Unlock()
	h.note(d, "clock +%s, to %s", t.Sub(now), t.Format(time.DateTime))
	h.count("clock: to a lifetime's edge")
	return true
}

// acting runs op with the clock still, then checks every family of d's user.
func (h *propHarness) acting(d *propDevice, op func()) {
	h.timeMu.RLock()
	defer h.timeMu.RUnlock()
	op()
	h.checkUser(d, d.user)
}

// The model's questions, under h.mu.

// mayBeRevoked: something that could revoke s has started (and not finished before s existed).
func (h *propHarness) mayBeRevoked(s *propSession) bool {
	if s.signOutStarted || s.revokedBy != 0 {
		return true
	}
	for _, b := range s.user.bumps {
		if b.keep != s && (b.end == 0 || b.end > s.start) {
			return true
		}
	}
	return false
}

// mustBeRevoked: before the operation that started at seq, s was certainly revoked.
func (h *propHarness) mustBeRevoked(s *propSession, seq uint64) bool {
	if s.revokedBy != 0 && s.revokedBy < seq {
		return true
	}
	for _, b := range s.user.bumps {
		if b.keep != s && b.start > s.end && b.end != 0 && b.end < seq {
			return true
		}
		// A sign-in that overlaps a disable either fails or commits first and is revoked by it.
		if b.disable && b.end != 0 && b.end < seq {
			return true
		}
	}
	return false
}

// knownOver: d's session is known to be revoked, or its device saw its token refused.
func (h *propHarness) knownOver(s *propSession) bool {
	s.mu.Lock()
	over := s.over
	s.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	return over || s.revokedBy != 0
}

func (h *propHarness) markRevoked(s *propSession, seq uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.revokedBy == 0 || seq < s.revokedBy {
		s.revokedBy = seq
	}
}

// startRevoking records that something that may revoke s starts.
func (h *propHarness) startRevoking(s *propSession) {
	h.mu.Lock()
	s.signOutStarted = true
	h.mu.Unlock()
}

// refused records that token, of family s, was refused for good. The caller holds s.mu when the
// token is s's live one.
func (h *propHarness) refused(s *propSession, token string) {
	h.mu.Lock()
	s.user.refused = append(s.user.refused, refusedToken{token: token, family: s})
	h.mu.Unlock()
}

// disableDone: u's disable has finished.
func (h *propHarness) disableDone(u *propUser) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return u.disable != nil && u.disable.end != 0
}

// accessMayBeRejected: a's session may be revoked or past its lifetime, or a token_version bump
// may be newer than a.
func (h *propHarness) accessMayBeRejected(a *accessRecord, now time.Time) bool {
	if h.mayBeRevoked(a.session) || !now.Before(a.session.expires) {
		return true
	}
	for _, b := range a.session.user.bumps {
		if b != a.fromBump && (b.end == 0 || b.end > a.start) {
			return true
		}
	}
	return false
}

// accessMustBeRejected: before seq, a's session was revoked or a bump started after a was issued
// finished; or a's session is past its lifetime.
func (h *propHarness) accessMustBeRejected(a *accessRecord, seq uint64, now time.Time) bool {
	if h.mustBeRevoked(a.session, seq) || !now.Before(a.session.expires) {
		return true
	}
	for _, b := range a.session.user.bumps {
		if b.start > a.end && b.end != 0 && b.end < seq {
			return true
		}
	}
	return false
}

func (h *propHarness) record(s *propSession, issued *auth.Issued, start, end uint64, bump *versionBump) *accessRecord {
	a := &accessRecord{token: issued.AccessToken, session: s, start: start, end: end, expires: issued.AccessExpiresAt, fromBump: bump}
	h.mu.Lock()
	h.tokens = append(h.tokens, a)
	h.mu.Unlock()
	return a
}

// refreshExpiry is the model's idle expiry of a refresh token issued now in s.
func refreshExpiry(s *propSession, now time.Time) time.Time {
	if e := now.Add(testConfig.RefreshIdleTTL); e.Before(s.expires) {
		return e
	}
	return s.expires
}

// familyRow is what the database holds about one family.
type familyRow struct {
	ID             string
	TokenHash      []byte
	RevokedAt      *time.Time
	ExpiresAt      time.Time
	TokenExpiresAt time.Time
	History        int // rows of refresh_tokens: every token the family ever issued
}

// families reads every family of a user in one query.
func (h *propHarness) families(userID string) (map[string]familyRow, error) {
	var rows []familyRow
	err := h.db.Store.DB().WithContext(h.t.Context()).Raw(`SELECT s.id, s.token_hash, s.revoked_at, s.expires_at, s.token_expires_at,
		(SELECT COUNT(*) FROM refresh_tokens t WHERE t.session_id = s.id) AS history
		FROM device_sessions s WHERE s.user_id = ?`, userID).Scan(&rows).Error
	byID := make(map[string]familyRow, len(rows))
	for _, r := range rows {
		byID[r.ID] = r
	}
	return byID, err
}

// liveHash reads the live token of one family: the caller holds s.mu.
func (h *propHarness) liveHash(s *propSession) []byte {
	d, err := h.db.Store.SessionByID(h.t.Context(), s.id)
	if err != nil {
		return nil
	}
	return d.TokenHash
}

// checkUser checks every family of u in the database against the model, d being the device that
// just acted (for the failure message; nil in the final checks):
//
//   - its token history holds one token per rotation its device was told of, plus the first: a
//     second successor of one token (a fork), or a rotation whose answer was lost, adds one;
//   - its live token is the one its device holds;
//   - its lifetimes are the model's;
//   - it is revoked when something certainly revoked it, and not while nothing could have;
//   - once it is over (certainly revoked, or past its lifetime), its device's token is refused
//     cleanly, with the error that says why, and joins the refused tokens.
func (h *propHarness) checkUser(d *propDevice, u *propUser) {
	h.t.Helper()
	h.mu.Lock()
	sessions := slices.Clone(u.sessions)
	h.mu.Unlock()
	for _, s := range sessions {
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	seq := h.seq.Add(1) // revocations finished before this must show in what is read next
	rows, err := h.families(u.id)
	if err != nil {
		h.fail(d, "read the families of %s: %v", u.email, err)
		return
	}
	now := h.clock.Now()
	for _, s := range sessions {
		row, ok := rows[s.id]
		h.mu.Lock()
		may, must := h.mayBeRevoked(s), h.mustBeRevoked(s, seq)
		h.mu.Unlock()
		switch {
		case !ok:
			h.fail(d, "family %s is gone from the database", s.id)
		case row.History != s.rotations+1:
			h.fail(d, "family %s holds %d tokens in its history after %d rotations its device was told of: a fork, or a rotation no client received", s.id, row.History, s.rotations)
		case !bytes.Equal(row.TokenHash, hash(s.live)):
			h.fail(d, "family %s's live token is not the one its device holds: a fork or a lost rotation", s.id)
		case !row.ExpiresAt.Equal(s.expires) || !row.TokenExpiresAt.Equal(s.tokenExpires):
			h.fail(d, "family %s's lifetimes are %s (session) and %s (token), want %s and %s", s.id, row.ExpiresAt, row.TokenExpiresAt, s.expires, s.tokenExpires)
		case must && row.RevokedAt == nil:
			h.fail(d, "family %s was certainly revoked but is not", s.id)
		case !may && row.RevokedAt != nil:
			h.fail(d, "family %s is revoked although nothing that could revoke it ran", s.id)
		case !s.over && (must || !now.Before(s.tokenExpires)):
			h.expectRefusal(d, s, seq)
		}
	}
}

// expectRefusal presents the live token of a family that is over, from its own device: it must be
// refused, with ErrSessionRevoked when the family was certainly revoked and ErrTokenExpired when
// it is only past its lifetime (or ErrSessionRevoked when something may have revoked it too). The
// caller holds s.mu.
func (h *propHarness) expectRefusal(d *propDevice, s *propSession, seq uint64) {
	now := h.clock.Now()
	_, err := h.insts[0].Refresh(h.t.Context(), s.live, auth.Client{DeviceID: s.device, IP: "192.0.2.11"})
	h.mu.Lock()
	may, must := h.mayBeRevoked(s), h.mustBeRevoked(s, seq)
	h.mu.Unlock()
	expired := !now.Before(s.tokenExpires)
	switch {
	case err == nil:
		h.fail(d, "family %s is over (revoked: %v, past its lifetime: %v) but its live token still refreshes", s.id, must, expired)
		return
	case errors.Is(err, auth.ErrSessionRevoked) && may:
		h.count("family over: its token refused as revoked")
	case errors.Is(err, auth.ErrTokenExpired) && expired && !must:
		h.count("family over: its token refused as expired")
	default:
		h.fail(d, "the live token of family %s, which is over (revoked: %v, may be: %v, past its lifetime: %v): got %v", s.id, must, may, expired, err)
		return
	}
	s.over = true
	h.refused(s, s.live)
}

// The operations. Each runs with h.timeMu held for reading, so the clock stands still.

func (h *propHarness) signIn(d *propDevice) {
	ctx := h.t.Context()
	if old := d.session; old != nil {
		// This sign-in replaces the device's session: another device that verifies its access
		// token meanwhile may find it revoked.
		h.startRevoking(old)
	}
	now := h.clock.Now()
	start := h.seq.Add(1)
	issued, err := h.inst(d).SignIn(ctx, d.user.email, testPassword, auth.Client{DeviceID: d.id, UserAgent: "Prop/1.0", IP: "192.0.2.10"})
	end := h.seq.Add(1)
	h.note(d, "sign in on %s: %v", d.id, err)
	disabled, disabling := h.disabledBefore(d.user, start)
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials) && disabled:
		h.count("sign in of a disabled user: refused")
		return
	case errors.Is(err, auth.ErrInvalidCredentials) && disabling:
		h.count("sign in raced a disable: refused")
		return
	case errors.Is(err, auth.ErrInvalidCredentials) && h.passwordChangeOverlaps(d.user, start, end):
		// The password was checked against the hash from before the change: refused, as a
		// sign-in with a password that has just been changed must be.
		h.count("sign in raced a password change: refused")
		return
	case err != nil:
		h.fail(d, "sign in: %v", err)
		return
	case disabled:
		h.fail(d, "a disabled user signed in")
		return
	}
	s := &propSession{id: issued.SessionID, user: d.user, device: d.id, start: start, end: end,
		expires: now.Add(testConfig.SessionMaxAge), live: issued.RefreshToken}
	s.tokenExpires = refreshExpiry(s, now)
	if !issued.RefreshExpiresAt.Equal(s.tokenExpires) {
		h.fail(d, "a sign-in's refresh token expires at %s, want %s", issued.RefreshExpiresAt, s.tokenExpires)
	}
	if old := d.session; old != nil {
		h.markRevoked(old, end) // signed out before, or replaced by this sign-in
		d.retired = append(d.retired, old)
	}
	h.mu.Lock()
	d.user.sessions = append(d.user.sessions, s)
	h.mu.Unlock()
	d.session = s
	d.access = h.record(s, issued, start, end, nil)
	h.count("signed in")
}

// disabledBefore tells whether u's disable finished before start (disabled), or may overlap an
// operation that started at start (disabling).
func (h *propHarness) disabledBefore(u *propUser, start uint64) (disabled, disabling bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u.disable == nil {
		return false, false
	}
	if u.disable.end != 0 && u.disable.end < start {
		return true, false
	}
	return false, true
}

func (h *propHarness) refresh(d *propDevice) {
	s := d.session
	s.mu.Lock()
	defer s.mu.Unlock()
	now := h.clock.Now()
	start := h.seq.Add(1)
	issued, err := h.inst(d).Refresh(h.t.Context(), s.live, h.client(d))
	end := h.seq.Add(1)
	h.note(d, "refresh %s: %v", s.id, err)
	h.afterRefresh(d, s, "refresh", []*auth.Issued{issued}, []error{err}, now, start, end)
}

// retry presents the token rotated last, as a client whose answer was lost would. While the
// grace window lasts it must get the same successor; afterwards it is a replay. With no rotation
// within the window, the device refreshes first and that answer is the one lost.
func (h *propHarness) retry(d *propDevice) {
	s := d.session
	now := h.clock.Now()
	if s.prev == "" || now.Sub(s.rotatedAt) >= testConfig.RefreshGrace {
		h.refresh(d)
		if h.knownOver(s) || s.prev == "" || now.Sub(s.rotatedAt) >= testConfig.RefreshGrace {
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	start := h.seq.Add(1)
	issued, err := h.inst(d).Refresh(h.t.Context(), s.prev, h.client(d))
	end := h.seq.Add(1)
	h.note(d, "retry %s within grace (%s after rotation): %v", s.id, now.Sub(s.rotatedAt), err)
	live := h.liveHash(s)
	h.mu.Lock()
	may, must := h.mayBeRevoked(s), h.mustBeRevoked(s, start)
	h.mu.Unlock()
	expired := !now.Before(s.tokenExpires)
	switch {
	case err == nil && must:
		h.fail(d, "a retry succeeded on a session revoked before it began")
	case err == nil && expired:
		h.fail(d, "a retry succeeded past the token's lifetime (%s, now %s)", s.tokenExpires, now)
	case err == nil && issued.RefreshToken != s.live:
		h.fail(d, "a retry within grace got another token than the successor its first try got")
	case err == nil && !bytes.Equal(hash(issued.RefreshToken), live):
		h.fail(d, "a retry within grace got a token that is not its family's live one")
	case err == nil && !issued.RefreshExpiresAt.Equal(s.tokenExpires):
		h.fail(d, "a retry within grace says its token expires at %s, want %s (a retry does not extend it)", issued.RefreshExpiresAt, s.tokenExpires)
	case err == nil:
		d.access = h.record(s, issued, start, end, nil)
		h.count("grace retry: same successor")
	case errors.Is(err, auth.ErrSessionRevoked) && may:
		h.markRevoked(s, end)
		h.refused(s, s.prev)
		h.count("grace retry: session was signed out")
	case errors.Is(err, auth.ErrTokenExpired) && expired && !must:
		s.over = true
		h.count("grace retry: past the token's lifetime, refused")
	case errors.Is(err, auth.ErrTokenReused):
		h.fail(d, "a retry within grace, successor unused, signed the device out: %v", err)
	default:
		h.fail(d, "retry within grace: %v (may be revoked: %v, must: %v, expired: %v)", err, may, must, expired)
	}
}

// tabs refreshes the live token from two tabs at once: both must end up with one successor.
func (h *propHarness) tabs(d *propDevice) {
	s := d.session
	s.mu.Lock()
	defer s.mu.Unlock()
	now := h.clock.Now()
	start := h.seq.Add(1)
	issued, errs := make([]*auth.Issued, 2), make([]error, 2)
	clients := []auth.Client{h.client(d), h.client(d)}
	insts := []*auth.Service{h.inst(d), h.inst(d)}
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			issued[i], errs[i] = insts[i].Refresh(h.t.Context(), s.live, clients[i])
		}()
	}
	wg.Wait()
	end := h.seq.Add(1)
	h.note(d, "two tabs refresh %s at once: %v", s.id, errs)
	h.afterRefresh(d, s, "two tabs", issued, errs, now, start, end)
}

// afterRefresh checks the answers to refreshes of s.live, each from one client, and moves the
// model on: every client holds the family's live token, or got a clean refusal. The caller
// holds s.mu.
func (h *propHarness) afterRefresh(d *propDevice, s *propSession, what string, issued []*auth.Issued, errs []error, now time.Time, start, end uint64) {
	live := h.liveHash(s)
	h.mu.Lock()
	may, must := h.mayBeRevoked(s), h.mustBeRevoked(s, start)
	h.mu.Unlock()
	expired := !now.Before(s.tokenExpires)
	expires := refreshExpiry(s, now)
	var successor string
	for i, err := range errs {
		switch {
		case err == nil && must:
			h.fail(d, "%s succeeded on a session revoked before it began", what)
			return
		case err == nil && expired:
			h.fail(d, "%s succeeded past the token's lifetime (%s, now %s)", what, s.tokenExpires, now)
			return
		case err == nil && (issued[i].SessionID != s.id || issued[i].RefreshToken == s.live):
			h.fail(d, "%s did not rotate within the family", what)
			return
		case err == nil && !bytes.Equal(hash(issued[i].RefreshToken), live):
			h.fail(d, "%s: a client was handed a token that is not its family's live one (a fork or a lost rotation)", what)
			return
		case err == nil && !issued[i].RefreshExpiresAt.Equal(expires):
			h.fail(d, "%s: the successor expires at %s, want %s", what, issued[i].RefreshExpiresAt, expires)
			return
		case err == nil:
			successor = issued[i].RefreshToken
			d.access = h.record(s, issued[i], start, end, nil)
			h.count(what + ": rotated")
		case errors.Is(err, auth.ErrSessionRevoked) && may:
			h.markRevoked(s, end)
			h.refused(s, s.live)
			h.count(what + ": session was signed out")
		case errors.Is(err, auth.ErrTokenExpired) && expired && !must:
			s.over = true
			h.refused(s, s.live)
			if !now.Before(s.expires) {
				h.count(what + ": past the session's max age, refused")
			} else {
				h.count(what + ": past the token's idle lifetime, refused")
			}
		case errors.Is(err, auth.ErrTokenReused):
			h.fail(d, "%s of the live token was taken for a replay: %v", what, err)
			return
		default:
			h.fail(d, "%s: %v (may be revoked: %v, must: %v, expired: %v)", what, err, may, must, expired)
			return
		}
	}
	if successor != "" {
		if s.prev != "" {
			s.older = append(s.older, s.prev)
		}
		s.prev, s.live, s.rotatedAt, s.tokenExpires = s.live, successor, now, expires
		s.rotations++
		if expires.Equal(s.expires) {
			h.count(what + ": capped by the session's max age")
		}
	}
}

// replay presents a token whose successor was used, or whose grace window is over, perhaps from
// another device: the family must be revoked. A token of an earlier, revoked session must only
// be refused.
func (h *propHarness) replay(d *propDevice) {
	s := d.session
	candidates, ownFamily := h.replayCandidates(d)
	if ownFamily == 0 && d.rnd.IntN(2) == 0 {
		// The thief's copy is two rotations old: the device refreshes twice first.
		h.refresh(d)
		if !h.knownOver(s) {
			h.refresh(d)
		}
		candidates, ownFamily = h.replayCandidates(d)
	}
	if len(candidates) == 0 {
		h.verify(d)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := d.rnd.IntN(len(candidates))
	if ownFamily > 0 && d.rnd.IntN(4) > 0 {
		i = d.rnd.IntN(ownFamily) // mostly the live family, whose revocation is the point
	}
	c := candidates[i]
	client := h.client(d)
	if d.rnd.IntN(3) == 0 {
		client.DeviceID = "thief-device-01"
	}
	h.seq.Add(1)
	_, err := h.inst(d).Refresh(h.t.Context(), c.token, client)
	end := h.seq.Add(1)
	h.note(d, "replay token %d of %d (own family: %v): %v", i, len(candidates), i < ownFamily, err)
	if i >= ownFamily {
		if !errors.Is(err, auth.ErrSessionRevoked) {
			h.fail(d, "a token of a revoked session: got %v, want ErrSessionRevoked", err)
		}
		h.refused(c.family, c.token)
		h.count("replay of a revoked session's token: refused")
		return
	}
	h.mu.Lock()
	may := h.mayBeRevoked(s)
	h.mu.Unlock()
	switch {
	case errors.Is(err, auth.ErrTokenReused):
		h.markRevoked(s, end)
		h.refused(s, c.token)
		h.count("replay: family revoked")
		h.checkReplayRevoked(d, s)
	case errors.Is(err, auth.ErrSessionRevoked) && may:
		h.markRevoked(s, end)
		h.refused(s, c.token)
		h.count("replay: session was signed out already")
	default:
		h.fail(d, "replay of a rotated token: got %v, want ErrTokenReused", err)
	}
}

// replayCandidate is a token a replay may present, and its family.
type replayCandidate struct {
	token  string
	family *propSession
}

// replayCandidates lists the tokens of d's family whose successor was used or whose grace window
// is over (the first ownFamily of them), then those of d's earlier, revoked sessions. Only d's
// goroutine rotates these families, so it reads their tokens without their locks.
func (h *propHarness) replayCandidates(d *propDevice) (candidates []replayCandidate, ownFamily int) {
	s := d.session
	if s.prev != "" && h.clock.Now().Sub(s.rotatedAt) >= testConfig.RefreshGrace {
		candidates = append(candidates, replayCandidate{s.prev, s})
	}
	for _, t := range s.older {
		candidates = append(candidates, replayCandidate{t, s})
	}
	ownFamily = len(candidates)
	for _, r := range d.retired {
		candidates = append(candidates, replayCandidate{r.live, r})
		if r.prev != "" {
			candidates = append(candidates, replayCandidate{r.prev, r})
		}
	}
	return candidates, ownFamily
}

// checkReplayRevoked: the family d's replay revoked is gone for the device too. The caller holds s.mu.
func (h *propHarness) checkReplayRevoked(d *propDevice, s *propSession) {
	ctx := h.t.Context()
	events, err := h.db.Store.EventsOfKind(ctx, d.user.id, models.EventTokenReused)
	if err != nil || !slices.ContainsFunc(events, func(e models.SecurityEvent) bool { return e.SessionID == s.id }) {
		h.fail(d, "no token_reused event for family %s: %v", s.id, err)
	}
	if _, err := h.inst(d).Refresh(ctx, s.live, h.client(d)); !errors.Is(err, auth.ErrSessionRevoked) {
		h.fail(d, "the device's live token after its family was revoked for a replay: got %v, want ErrSessionRevoked", err)
	}
	s.over = true
	h.refused(s, s.live)
	if _, err := h.inst(d).Verify(ctx, d.access.token); err == nil && d.access.session == s {
		h.fail(d, "an access token of a family revoked for a replay still verifies")
	}
}

// presentRefused presents again a refresh token of d's user that was refused for good, from its
// own device: it must be refused again. An old token of a family that is only past its lifetime
// is a replay, and revokes that family.
func (h *propHarness) presentRefused(d *propDevice) {
	h.mu.Lock()
	refused := slices.Clone(d.user.refused)
	h.mu.Unlock()
	if len(refused) == 0 {
		h.verify(d)
		return
	}
	r := refused[d.rnd.IntN(len(refused))]
	h.startRevoking(r.family)
	client := h.client(d)
	client.DeviceID = r.family.device
	start := h.seq.Add(1)
	_, err := h.inst(d).Refresh(h.t.Context(), r.token, client)
	end := h.seq.Add(1)
	h.note(d, "present a refused token of %s again: %v", r.family.id, err)
	h.mu.Lock()
	must := h.mustBeRevoked(r.family, start)
	h.mu.Unlock()
	switch {
	case err == nil:
		h.fail(d, "a refresh token that was refused for good (family %s) works again", r.family.id)
	case errors.Is(err, auth.ErrSessionRevoked):
		h.count("refused token presented again: refused")
	case errors.Is(err, auth.ErrTokenExpired) && !must:
		h.count("refused token presented again: refused")
	case errors.Is(err, auth.ErrTokenReused) && !must:
		h.markRevoked(r.family, end)
		h.count("refused token presented again: refused")
	default:
		h.fail(d, "a refresh token that was refused for good (family %s, revoked: %v) presented again: %v", r.family.id, must, err)
	}
}

// verify checks the device's access token, and one other token of the same user, against the model.
func (h *propHarness) verify(d *propDevice) {
	h.verifyOne(d, d.access)
	h.mu.Lock()
	var mine []*accessRecord
	for _, a := range h.tokens {
		if a.session.user == d.user {
			mine = append(mine, a)
		}
	}
	h.mu.Unlock()
	h.verifyOne(d, mine[d.rnd.IntN(len(mine))])
}

func (h *propHarness) verifyOne(d *propDevice, a *accessRecord) {
	now := h.clock.Now()
	start := h.seq.Add(1)
	p, err := h.inst(d).Verify(h.t.Context(), a.token)
	h.note(d, "verify an access token of %s: %v", a.session.id, err)
	h.mu.Lock()
	may, must := h.accessMayBeRejected(a, now), h.accessMustBeRejected(a, start, now)
	h.mu.Unlock()
	switch {
	case !now.Before(a.expires):
		if !errors.Is(err, auth.ErrTokenExpired) {
			h.fail(d, "an access token past its lifetime: got %v, want ErrTokenExpired", err)
		}
		h.count("verify: expired")
	case err == nil && must:
		h.fail(d, "an access token verified after its session was revoked or ended, or its token_version bumped")
	case err == nil && p.SessionID != a.session.id:
		h.fail(d, "an access token verified for another session")
	case err == nil:
		h.count("verify: accepted")
	case errors.Is(err, auth.ErrSessionRevoked) && may:
		if !now.Before(a.session.expires) {
			h.count("verify: session past its max age, rejected")
		} else {
			h.count("verify: rejected")
		}
	default:
		h.fail(d, "verify an access token: %v (may be rejected: %v); %s", err, may, h.describeAccess(a))
	}
}

// describeAccess says what the model knows of a's token, its session and its user's bumps, for
// a failure message.
func (h *propHarness) describeAccess(a *accessRecord) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := a.session
	out := fmt.Sprintf("the token: issued [%d]–[%d], from a password change: %v; its session %s: device %s, signed in [%d]–[%d], sign-out started %v, revoked by [%d]; the user's bumps:",
		a.start, a.end, a.fromBump != nil, s.id, s.device, s.start, s.end, s.signOutStarted, s.revokedBy)
	for _, b := range s.user.bumps {
		keep := ""
		if b.keep != nil {
			keep = b.keep.id
		}
		out += fmt.Sprintf(" [%d]–[%d] (password %v, disable %v, keeps %q)", b.start, b.end, b.password, b.disable, keep)
	}
	return out
}

// signOutDevice signs out one of the user's sessions, this device's or another's.
func (h *propHarness) signOutDevice(d *propDevice) {
	now := h.clock.Now()
	h.mu.Lock()
	targets := d.user.sessions
	if live := slices.DeleteFunc(slices.Clone(targets), func(s *propSession) bool {
		return s.revokedBy != 0 || !now.Before(s.expires)
	}); len(live) > 0 && d.rnd.IntN(4) > 0 {
		targets = live // mostly one not known to be over, whose sign-out is the point
	}
	target := targets[d.rnd.IntN(len(targets))]
	target.signOutStarted = true
	h.mu.Unlock()
	err := h.inst(d).SignOutDevice(h.t.Context(), d.user.id, target.id, "192.0.2.10")
	end := h.seq.Add(1)
	h.note(d, "sign out session %s: %v", target.id, err)
	ended := !now.Before(target.expires)
	switch {
	case err == nil && ended:
		h.fail(d, "signed out session %s, which was past its lifetime: want ErrNotFound", target.id)
	case err == nil:
		h.markRevoked(target, end)
		h.count("device signed out")
	case errors.Is(err, auth.ErrNotFound) && ended:
		h.count("sign out a session past its lifetime: not found")
	case errors.Is(err, auth.ErrNotFound):
		h.markRevoked(target, end) // signed out already; the check below finds out if it was not
		h.count("sign out a session signed out already: not found")
	default:
		h.fail(d, "sign out a device: %v", err)
	}
}

// principal is who d's access token speaks for, or nil when it no longer verifies.
func (h *propHarness) principal(d *propDevice) *auth.Principal {
	p, err := h.inst(d).Verify(h.t.Context(), d.access.token)
	if err != nil {
		return nil
	}
	return p
}

func (h *propHarness) startBump(u *propUser) *versionBump {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := &versionBump{start: h.seq.Add(1)}
	u.bumps = append(u.bumps, b)
	return b
}

// passwordChangeOverlaps tells whether a password change of u ran between start and end.
func (h *propHarness) passwordChangeOverlaps(u *propUser, start, end uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range u.bumps {
		if b.password && b.start < end && (b.end == 0 || b.end > start) {
			return true
		}
	}
	return false
}

func (h *propHarness) endBump(b *versionBump) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b.end = h.seq.Add(1)
}

func (h *propHarness) signOutEverywhere(d *propDevice) {
	p := h.principal(d)
	if p == nil {
		h.refresh(d)
		return
	}
	b := h.startBump(d.user)
	err := h.inst(d).SignOutEverywhere(h.t.Context(), p, "192.0.2.10")
	h.endBump(b)
	h.note(d, "sign out everywhere: %v", err)
	if err != nil {
		h.fail(d, "sign out everywhere: %v", err)
		return
	}
	h.count("signed out everywhere")
	h.afterBump(d, d.user, b)
}

// changePassword signs out every session of the user, this device's too, and goes on in a new
// session on this device: no refresh token from before the change works afterwards.
func (h *propHarness) changePassword(d *propDevice) {
	p := h.principal(d)
	if p == nil {
		h.refresh(d)
		return
	}
	now := h.clock.Now()
	b := h.startBump(d.user)
	h.mu.Lock()
	b.password = true
	h.mu.Unlock()
	start := h.seq.Add(1)
	issued, err := h.inst(d).ChangePassword(h.t.Context(), p, testPassword, testPassword, testPassword, "192.0.2.10")
	end := h.seq.Add(1)
	h.note(d, "change password: %v", err)
	if errors.Is(err, auth.ErrSessionRevoked) {
		// Rolled back: nothing was bumped after all.
		h.mu.Lock()
		d.user.bumps = slices.DeleteFunc(d.user.bumps, func(x *versionBump) bool { return x == b })
		h.mu.Unlock()
		h.endBump(b)
		h.count("password change: session was signed out")
		return
	}
	if err != nil {
		h.endBump(b)
		h.fail(d, "change password: %v", err)
		return
	}
	old := d.session
	s := &propSession{id: issued.SessionID, user: d.user, device: d.id, start: start, end: end,
		expires: now.Add(testConfig.SessionMaxAge), live: issued.RefreshToken}
	s.tokenExpires = refreshExpiry(s, now)
	h.mu.Lock()
	b.keep = s // the session it starts is the one it does not revoke
	d.user.sessions = append(d.user.sessions, s)
	h.mu.Unlock()
	h.endBump(b)
	h.count("password changed")
	if !issued.RefreshExpiresAt.Equal(s.tokenExpires) {
		h.fail(d, "the refresh token of a password change expires at %s, want %s", issued.RefreshExpiresAt, s.tokenExpires)
	}
	h.markRevoked(old, end)
	d.retired = append(d.retired, old)
	d.session = s
	d.access = h.record(s, issued, start, end, b)
	h.afterBump(d, d.user, b)
	old.mu.Lock()
	_, err = h.inst(d).Refresh(h.t.Context(), old.live, auth.Client{DeviceID: d.id, IP: "192.0.2.10"})
	if err == nil {
		h.fail(d, "the refresh token this device held before the password change still works")
	} else {
		old.over = true
		h.refused(old, old.live)
	}
	old.mu.Unlock()
	h.verifyOne(d, d.access)
}

// disable has an operator disable u (token rule 7): every session of u is revoked, and u can
// neither sign in nor refresh afterwards (checked here, by checkUser, and by every step of u's
// devices from now on).
func (h *propHarness) disable(d *propDevice, u *propUser) {
	h.timeMu.RLock()
	defer h.timeMu.RUnlock()
	b := h.startBump(u)
	h.mu.Lock()
	b.disable = true
	u.disable = b
	h.mu.Unlock()
	err := h.inst(d).DisableUser(h.t.Context(), u.email)
	h.endBump(b)
	h.note(d, "disable %s: %v", u.email, err)
	if err != nil {
		h.fail(d, "disable a user: %v", err)
		return
	}
	h.count("user disabled")
	h.afterBump(d, u, b)
	if _, err := h.inst(d).SignIn(h.t.Context(), u.email, testPassword, auth.Client{DeviceID: "operator-console", IP: "192.0.2.12"}); !errors.Is(err, auth.ErrInvalidCredentials) {
		h.fail(d, "sign in with the right password right after the user was disabled: got %v, want ErrInvalidCredentials", err)
	}
	events, err := h.db.Store.EventsOfKind(h.t.Context(), u.id, models.EventUserDisabled)
	if err != nil || len(events) != 1 {
		h.fail(d, "want one user_disabled event, got %d (%v)", len(events), err)
	}
	h.checkUser(d, u)
	if u != d.user {
		h.checkUser(d, d.user)
	}
}

// afterBump checks what a finished bump b of u guarantees: every session of u that existed before
// it (but the one it keeps) is revoked, and every access token issued before it is rejected.
func (h *propHarness) afterBump(d *propDevice, u *propUser, b *versionBump) {
	h.mu.Lock()
	var sessions []*propSession
	for _, s := range u.sessions {
		if s != b.keep && s.end < b.start {
			sessions = append(sessions, s)
		}
	}
	var tokens []*accessRecord
	for _, a := range h.tokens {
		if a.session.user == u && a.end < b.start {
			tokens = append(tokens, a)
		}
	}
	h.mu.Unlock()
	for _, s := range sessions {
		h.markRevoked(s, b.end)
	}
	for _, a := range tokens {
		if _, err := h.inst(d).Verify(h.t.Context(), a.token); err == nil {
			h.fail(d, "an access token issued before a token_version bump still verifies")
			return
		}
	}
}

// finalChecks: every family of every user agrees with the model, and the database holds no
// session the model does not know; no refused token works; nothing revoked refreshes or
// verifies; and the run exercised what it is about.
func (h *propHarness) finalChecks(devices []*propDevice) {
	ctx := h.t.Context()
	h.timeMu.RLock()
	defer h.timeMu.RUnlock()
	for _, u := range h.users {
		h.checkUser(nil, u)
		var ids []string
		if err := h.db.Store.DB().Raw("SELECT id FROM device_sessions WHERE user_id = ?", u.id).Scan(&ids).Error; err != nil {
			h.t.Fatal(err)
		}
		for _, id := range ids {
			if !slices.ContainsFunc(u.sessions, func(s *propSession) bool { return s.id == id }) {
				h.fail(nil, "the database holds a session %s of %s that no sign-in returned", id, u.email)
			}
		}
		for _, r := range u.refused {
			if _, err := h.insts[1].Refresh(ctx, r.token, auth.Client{DeviceID: r.family.device}); err == nil {
				h.fail(nil, "a refresh token that was refused for good (family %s) works again", r.family.id)
			}
		}
	}
	end := h.seq.Add(1)
	now := h.clock.Now()
	for _, d := range devices {
		for _, s := range d.user.sessions {
			if !h.mustBeRevoked(s, end) {
				continue
			}
			if _, err := h.insts[0].Refresh(ctx, s.live, auth.Client{}); !errors.Is(err, auth.ErrSessionRevoked) {
				h.fail(nil, "the live token of revoked session %s: got %v, want ErrSessionRevoked", s.id, err)
			}
		}
	}
	for _, a := range h.tokens {
		if h.accessMustBeRejected(a, end, now) {
			if _, err := h.insts[1].Verify(ctx, a.token); err == nil {
				h.fail(nil, "an access token of session %s verifies after its revocation", a.session.id)
			}
		}
	}
	for _, outcome := range []string{"refresh: rotated", "grace retry: same successor", "two tabs: rotated", "replay: family revoked",
		"device signed out", "verify: accepted", "verify: expired", "user disabled", "refused token presented again: refused"} {
		if h.stats[outcome] == 0 {
			h.t.Errorf("seed %d: the run never got %q; the interleaving did not exercise the rules", h.seed, outcome)
		}
	}
}
