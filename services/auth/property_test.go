package auth_test

import (
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
)

// TestRotationProperties runs random interleavings of what devices and their owners do to
// device sessions: refresh, a retry of the just-rotated token within the grace window, two tabs
// refreshing at once, replay of an old token, verifying the access token, signing a device out,
// signing out everywhere and changing the password (both bump token_version), signing in again,
// and moving the clock. One goroutine drives each device (three users with two devices each),
// on two service instances sharing the database, and after every step it checks the token rules:
//
//   - a family never has more than one live token (CountLiveTokens), and the live token is the
//     one its device holds (no fork, no lost rotation);
//   - nothing refreshes, and no access token verifies, once its session was revoked;
//   - a retry within grace while the successor is unused returns that same successor and never
//     signs the device out; neither do two tabs refreshing at once;
//   - a replay revokes the family and records a token_reused event;
//   - access tokens issued before a token_version bump are rejected by Verify, also on the one
//     session a password change keeps.
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
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		for round := range rounds {
			newPropHarness(t, db, seed+uint64(round), round).run()
			if t.Failed() {
				return
			}
		}
	})
}

const (
	propUsers          = 3
	propDevicesPerUser = 2
	propOperations     = 300 // in all, shared out among the devices
)

// propHarness is the system under test and the model of what each party knows about it. The
// model is only what the test can know for sure from the order of calls: every operation takes a
// sequence number when it starts and another when it returns.
type propHarness struct {
	t     *testing.T
	db    *testdb.DB
	seed  uint64
	clock *clock
	insts []*auth.Service
	seq   atomic.Uint64

	// timeMu keeps the clock still during an operation: clock advances take it for writing,
	// operations for reading, so that "within grace" means the same to the test and the service.
	timeMu sync.RWMutex

	mu     sync.Mutex // guards everything below, and the shared fields of the sessions
	users  []*propUser
	tokens []*accessRecord
	stats  map[string]int

	failed atomic.Bool
}

type propUser struct {
	email, id string
	sessions  []*propSession
	bumps     []*versionBump
}

// versionBump is a sign-out-everywhere or a password change: it bumps token_version and
// revokes every session of the user except keep.
type versionBump struct {
	start, end uint64 // end is 0 while it runs
	keep       *propSession
	password   bool // a password change: a sign-in that overlaps it may fail
}

type propSession struct {
	id         string
	user       *propUser
	start, end uint64 // the sign-in that created it

	// Shared, under propHarness.mu.
	signOutStarted bool   // someone started signing this session out
	revokedBy      uint64 // a sequence number by which it is certainly revoked; 0 while not known

	// Owned by the goroutine of the device the session lives on.
	live, prev string    // the device's refresh token, and the one it rotated from
	rotatedAt  time.Time // when prev was rotated
	older      []string  // tokens rotated before prev: their successors were used
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
	retired []string // refresh tokens of this device's earlier, revoked sessions
	rnd     *rand.Rand
	recent  []string // the last operations, for failure messages
}

// newPropHarness sets up one round of the test on db, with users new to the database.
func newPropHarness(t *testing.T, db *testdb.DB, seed uint64, round int) *propHarness {
	e := newEnv(t, db)
	keyDir := t.TempDir()
	h := &propHarness{t: t, db: db, seed: seed, clock: e.clock, stats: map[string]int{},
		insts: []*auth.Service{newService(t, db, e.clock, keyDir), newService(t, db, e.clock, keyDir)}}
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
			for range propOperations / len(devices) {
				if h.failed.Load() {
					return
				}
				h.step(d)
			}
		}()
	}
	wg.Wait()
	if !h.failed.Load() {
		h.finalChecks(devices)
	}
	h.t.Logf("seed %d: %d operations; outcomes: %v", h.seed, propOperations, h.stats)
}

// step does one random thing on device d.
func (h *propHarness) step(d *propDevice) {
	if d.rnd.IntN(100) < 12 {
		h.advance(d)
		return
	}
	h.timeMu.RLock()
	defer h.timeMu.RUnlock()
	if d.session == nil || h.knownRevoked(d.session) {
		h.signIn(d)
		return
	}
	switch n := d.rnd.IntN(100); {
	case n < 30:
		h.refresh(d)
	case n < 44:
		h.retry(d)
	case n < 50:
		h.tabs(d)
	case n < 60:
		h.replay(d)
	case n < 75:
		h.verify(d)
	case n < 83:
		h.signOutDevice(d)
	case n < 87:
		h.signOutEverywhere(d)
	case n < 91:
		h.changePassword(d)
	default:
		h.signIn(d)
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
	h.t.Errorf("seed %d, %s: %s\nits last operations:\n  %s", h.seed, d.id, fmt.Sprintf(format, args...), strings.Join(d.recent, "\n  "))
}

func (h *propHarness) advance(d *propDevice) {
	steps := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 6 * time.Second, 9 * time.Second, 11 * time.Second, 30 * time.Second, 3 * time.Minute}
	by := steps[d.rnd.IntN(len(steps))]
	h.timeMu.Lock()
	h.clock.Advance(by)
	h.timeMu.Unlock()
	h.note(d, "clock +%s", by)
	h.count("clock advanced")
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
	}
	return false
}

func (h *propHarness) knownRevoked(s *propSession) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return s.revokedBy != 0
}

func (h *propHarness) markRevoked(s *propSession, seq uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.revokedBy == 0 || seq < s.revokedBy {
		s.revokedBy = seq
	}
}

// accessMayBeRejected: a's session may be revoked, or a token_version bump may be newer than a.
func (h *propHarness) accessMayBeRejected(a *accessRecord) bool {
	if h.mayBeRevoked(a.session) {
		return true
	}
	for _, b := range a.session.user.bumps {
		if b != a.fromBump && (b.end == 0 || b.end > a.start) {
			return true
		}
	}
	return false
}

// accessMustBeRejected: before seq, a's session was revoked or a bump started after a was issued finished.
func (h *propHarness) accessMustBeRejected(a *accessRecord, seq uint64) bool {
	if h.mustBeRevoked(a.session, seq) {
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

// checkFamily checks the family of s in the database against the model: at most one live token;
// none once s is certainly revoked; and, while nothing could have revoked s, exactly one, the
// token its device holds.
func (h *propHarness) checkFamily(d *propDevice, s *propSession) {
	h.t.Helper()
	seq := h.seq.Add(1) // revocations finished before this must show in what is read next
	n, err := h.db.Store.CountLiveTokens(h.t.Context(), s.id, h.clock.Now())
	if err != nil {
		h.fail(d, "CountLiveTokens: %v", err)
		return
	}
	row, err := h.db.Store.SessionByID(h.t.Context(), s.id)
	if err != nil {
		h.fail(d, "SessionByID: %v", err)
		return
	}
	h.mu.Lock()
	may, must := h.mayBeRevoked(s), h.mustBeRevoked(s, seq)
	h.mu.Unlock()
	switch {
	case n > 1:
		h.fail(d, "family %s has %d live tokens", s.id, n)
	case must && n != 0:
		h.fail(d, "family %s was revoked but still has a live token", s.id)
	case !may && n != 1:
		h.fail(d, "family %s lost its live token although nothing revoked it", s.id)
	case !may && s == d.session && string(row.TokenHash) != string(hash(s.live)):
		h.fail(d, "family %s's live token is not the one its device holds: a fork or a lost rotation", s.id)
	}
}

// The operations. Each runs with h.timeMu held for reading, so the clock stands still.

func (h *propHarness) signIn(d *propDevice) {
	ctx := h.t.Context()
	if old := d.session; old != nil {
		// This sign-in replaces the device's session: another device that verifies its access
		// token meanwhile may find it revoked.
		h.mu.Lock()
		old.signOutStarted = true
		h.mu.Unlock()
	}
	start := h.seq.Add(1)
	issued, err := h.inst(d).SignIn(ctx, d.user.email, testPassword, auth.Client{DeviceID: d.id, UserAgent: "Prop/1.0", IP: "192.0.2.10"})
	end := h.seq.Add(1)
	h.note(d, "sign in on %s: %v", d.id, err)
	if errors.Is(err, auth.ErrInvalidCredentials) && h.passwordChangeOverlaps(d.user, start, end) {
		// The password was checked against the hash from before the change: refused, as a
		// sign-in with a password that has just been changed must be.
		h.count("sign in raced a password change: refused")
		return
	}
	if err != nil {
		h.fail(d, "sign in: %v", err)
		return
	}
	if old := d.session; old != nil {
		h.markRevoked(old, end) // signed out before, or replaced by this sign-in
		d.retired = append(d.retired, old.live)
		if old.prev != "" {
			d.retired = append(d.retired, old.prev)
		}
		d.retired = append(d.retired, old.older...)
	}
	s := &propSession{id: issued.SessionID, user: d.user, start: start, end: end, live: issued.RefreshToken}
	h.mu.Lock()
	d.user.sessions = append(d.user.sessions, s)
	h.mu.Unlock()
	d.session = s
	d.access = h.record(s, issued, start, end, nil)
	h.count("signed in")
	h.checkFamily(d, s)
}

func (h *propHarness) refresh(d *propDevice) {
	s := d.session
	now := h.clock.Now()
	start := h.seq.Add(1)
	issued, err := h.inst(d).Refresh(h.t.Context(), s.live, h.client(d))
	end := h.seq.Add(1)
	h.note(d, "refresh %s: %v", s.id, err)
	h.afterRefresh(d, s, "refresh", []*auth.Issued{issued}, []error{err}, now, start, end)
}

// retry presents the token rotated last, as a client whose answer was lost would. While the
// grace window lasts it must get the same successor; afterwards it is a replay.
func (h *propHarness) retry(d *propDevice) {
	s := d.session
	now := h.clock.Now()
	if s.prev == "" || now.Sub(s.rotatedAt) >= testConfig.RefreshGrace {
		h.refresh(d)
		return
	}
	start := h.seq.Add(1)
	issued, err := h.inst(d).Refresh(h.t.Context(), s.prev, h.client(d))
	end := h.seq.Add(1)
	h.note(d, "retry %s within grace (%s after rotation): %v", s.id, now.Sub(s.rotatedAt), err)
	h.mu.Lock()
	may, must := h.mayBeRevoked(s), h.mustBeRevoked(s, start)
	h.mu.Unlock()
	switch {
	case err == nil && issued.RefreshToken != s.live:
		h.fail(d, "a retry within grace got another token than the successor its first try got")
	case err == nil && must:
		h.fail(d, "a retry succeeded on a session revoked before it began")
	case err == nil:
		d.access = h.record(s, issued, start, end, nil)
		h.count("grace retry: same successor")
	case errors.Is(err, auth.ErrSessionRevoked) && may:
		h.markRevoked(s, end)
		h.count("grace retry: session was signed out")
	case errors.Is(err, auth.ErrTokenReused):
		h.fail(d, "a retry within grace, successor unused, signed the device out: %v", err)
	default:
		h.fail(d, "retry within grace: %v", err)
	}
	h.checkFamily(d, s)
}

// tabs refreshes the live token from two tabs at once: both must end up with one successor.
func (h *propHarness) tabs(d *propDevice) {
	s := d.session
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

// afterRefresh checks the answers to refreshes of s.live and moves the model on.
func (h *propHarness) afterRefresh(d *propDevice, s *propSession, what string, issued []*auth.Issued, errs []error, now time.Time, start, end uint64) {
	h.mu.Lock()
	may, must := h.mayBeRevoked(s), h.mustBeRevoked(s, start)
	h.mu.Unlock()
	var successor string
	for i, err := range errs {
		switch {
		case err == nil && must:
			h.fail(d, "%s succeeded on a session revoked before it began", what)
			return
		case err == nil && (issued[i].SessionID != s.id || issued[i].RefreshToken == s.live):
			h.fail(d, "%s did not rotate within the family", what)
			return
		case err == nil && successor != "" && issued[i].RefreshToken != successor:
			h.fail(d, "%s: concurrent refreshes of one token got different successors (a fork)", what)
			return
		case err == nil:
			successor = issued[i].RefreshToken
			d.access = h.record(s, issued[i], start, end, nil)
			h.count(what + ": rotated")
		case errors.Is(err, auth.ErrSessionRevoked) && may:
			h.markRevoked(s, end)
			h.count(what + ": session was signed out")
		case errors.Is(err, auth.ErrTokenReused):
			h.fail(d, "%s of the live token was taken for a replay: %v", what, err)
			return
		default:
			h.fail(d, "%s: %v (session may be revoked: %v)", what, err, may)
			return
		}
	}
	if successor != "" {
		if s.prev != "" {
			s.older = append(s.older, s.prev)
		}
		s.prev, s.live, s.rotatedAt = s.live, successor, now
	}
	h.checkFamily(d, s)
}

// replay presents a token whose successor was used, or whose grace window is over, perhaps from
// another device: the family must be revoked. A token of an earlier, revoked session must only
// be refused.
func (h *propHarness) replay(d *propDevice) {
	s := d.session
	now := h.clock.Now()
	var candidates []string
	if s.prev != "" && now.Sub(s.rotatedAt) >= testConfig.RefreshGrace {
		candidates = append(candidates, s.prev)
	}
	candidates = append(candidates, s.older...)
	ownFamily := len(candidates)
	candidates = append(candidates, d.retired...)
	if len(candidates) == 0 {
		h.verify(d)
		return
	}
	i := d.rnd.IntN(len(candidates))
	if ownFamily > 0 && d.rnd.IntN(4) > 0 {
		i = d.rnd.IntN(ownFamily) // mostly the live family, whose revocation is the point
	}
	client := h.client(d)
	if d.rnd.IntN(3) == 0 {
		client.DeviceID = "thief-device-01"
	}
	h.seq.Add(1)
	_, err := h.inst(d).Refresh(h.t.Context(), candidates[i], client)
	end := h.seq.Add(1)
	h.note(d, "replay token %d of %d (own family: %v): %v", i, len(candidates), i < ownFamily, err)
	if i >= ownFamily {
		if !errors.Is(err, auth.ErrSessionRevoked) {
			h.fail(d, "a token of a revoked session: got %v, want ErrSessionRevoked", err)
		}
		h.count("replay of a revoked session's token: refused")
		return
	}
	h.mu.Lock()
	may := h.mayBeRevoked(s)
	h.mu.Unlock()
	switch {
	case errors.Is(err, auth.ErrTokenReused):
		h.markRevoked(s, end)
		h.count("replay: family revoked")
		h.checkReplayRevoked(d, s)
	case errors.Is(err, auth.ErrSessionRevoked) && may:
		h.markRevoked(s, end)
		h.count("replay: session was signed out already")
	default:
		h.fail(d, "replay of a rotated token: got %v, want ErrTokenReused", err)
	}
	h.checkFamily(d, s)
}

func (h *propHarness) checkReplayRevoked(d *propDevice, s *propSession) {
	ctx := h.t.Context()
	events, err := h.db.Store.EventsOfKind(ctx, d.user.id, models.EventTokenReused)
	if err != nil || !slices.ContainsFunc(events, func(e models.SecurityEvent) bool { return e.SessionID == s.id }) {
		h.fail(d, "no token_reused event for family %s: %v", s.id, err)
	}
	if _, err := h.inst(d).Refresh(ctx, s.live, h.client(d)); !errors.Is(err, auth.ErrSessionRevoked) {
		h.fail(d, "the device's live token after its family was revoked for a replay: got %v, want ErrSessionRevoked", err)
	}
	if _, err := h.inst(d).Verify(ctx, d.access.token); err == nil {
		h.fail(d, "an access token of a family revoked for a replay still verifies")
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
	may, must := h.accessMayBeRejected(a), h.accessMustBeRejected(a, start)
	h.mu.Unlock()
	switch {
	case !now.Before(a.expires):
		if !errors.Is(err, auth.ErrTokenExpired) {
			h.fail(d, "an expired access token: got %v, want ErrTokenExpired", err)
		}
		h.count("verify: expired")
	case err == nil && must:
		h.fail(d, "an access token verified after its session was revoked or its token_version bumped")
	case err == nil && p.SessionID != a.session.id:
		h.fail(d, "an access token verified for another session")
	case err == nil:
		h.count("verify: accepted")
	case errors.Is(err, auth.ErrSessionRevoked) && may:
		h.count("verify: rejected")
	default:
		h.fail(d, "verify an access token: %v (may be rejected: %v)", err, may)
	}
}

// signOutDevice signs out one of the user's sessions, this device's or another's.
func (h *propHarness) signOutDevice(d *propDevice) {
	h.mu.Lock()
	target := d.user.sessions[d.rnd.IntN(len(d.user.sessions))]
	target.signOutStarted = true
	h.mu.Unlock()
	err := h.inst(d).SignOutDevice(h.t.Context(), d.user.id, target.id, "192.0.2.10")
	end := h.seq.Add(1)
	h.note(d, "sign out session %s: %v", target.id, err)
	if err != nil && !errors.Is(err, auth.ErrNotFound) {
		h.fail(d, "sign out a device: %v", err)
		return
	}
	h.markRevoked(target, end)
	h.count("device signed out")
	h.checkFamily(d, target)
}

// principal is who d's access token speaks for, or nil when it no longer verifies.
func (h *propHarness) principal(d *propDevice) *auth.Principal {
	p, err := h.inst(d).Verify(h.t.Context(), d.access.token)
	if err != nil {
		return nil
	}
	return p
}

func (h *propHarness) startBump(d *propDevice, keep *propSession) *versionBump {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := &versionBump{start: h.seq.Add(1), keep: keep}
	d.user.bumps = append(d.user.bumps, b)
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
	b := h.startBump(d, nil)
	err := h.inst(d).SignOutEverywhere(h.t.Context(), p, "192.0.2.10")
	h.endBump(b)
	h.note(d, "sign out everywhere: %v", err)
	if err != nil {
		h.fail(d, "sign out everywhere: %v", err)
		return
	}
	h.count("signed out everywhere")
	h.afterBump(d, b)
}

// changePassword signs out every session of the user, this device's too, and goes on in a new
// session on this device: no refresh token from before the change works afterwards.
func (h *propHarness) changePassword(d *propDevice) {
	p := h.principal(d)
	if p == nil {
		h.refresh(d)
		return
	}
	b := h.startBump(d, nil)
	h.mu.Lock()
	b.password = true
	h.mu.Unlock()
	start := h.seq.Add(1)
	issued, err := h.inst(d).ChangePassword(h.t.Context(), p, testPassword, testPassword, testPassword, "192.0.2.10")
	end := h.seq.Add(1)
	h.endBump(b)
	h.note(d, "change password: %v", err)
	if errors.Is(err, auth.ErrSessionRevoked) {
		// Rolled back: nothing was bumped after all.
		h.mu.Lock()
		d.user.bumps = slices.DeleteFunc(d.user.bumps, func(x *versionBump) bool { return x == b })
		h.mu.Unlock()
		h.count("password change: session was signed out")
		return
	}
	if err != nil {
		h.fail(d, "change password: %v", err)
		return
	}
	h.count("password changed")
	old := d.session
	h.markRevoked(old, end)
	d.retired = append(d.retired, old.live)
	if old.prev != "" {
		d.retired = append(d.retired, old.prev)
	}
	d.retired = append(d.retired, old.older...)
	s := &propSession{id: issued.SessionID, user: d.user, start: start, end: end, live: issued.RefreshToken}
	h.mu.Lock()
	d.user.sessions = append(d.user.sessions, s)
	h.mu.Unlock()
	d.session = s
	d.access = h.record(s, issued, start, end, b)
	h.afterBump(d, b)
	if _, err := h.inst(d).Refresh(h.t.Context(), old.live, auth.Client{DeviceID: d.id, IP: "192.0.2.10"}); err == nil {
		h.fail(d, "the refresh token this device held before the password change still works")
	}
	h.verifyOne(d, d.access)
	h.checkFamily(d, s)
}

// afterBump checks what a finished bump b guarantees: every session of the user that existed
// before it (but the one it keeps) is revoked, and every access token issued before it is rejected.
func (h *propHarness) afterBump(d *propDevice, b *versionBump) {
	h.mu.Lock()
	var sessions []*propSession
	for _, s := range d.user.sessions {
		if s != b.keep && s.end < b.start {
			sessions = append(sessions, s)
		}
	}
	var tokens []*accessRecord
	for _, a := range h.tokens {
		if a.session.user == d.user && a.end < b.start {
			tokens = append(tokens, a)
		}
	}
	h.mu.Unlock()
	for _, s := range sessions {
		h.markRevoked(s, b.end)
		h.checkFamily(d, s)
	}
	for _, a := range tokens {
		if _, err := h.inst(d).Verify(h.t.Context(), a.token); err == nil {
			h.fail(d, "an access token issued before a token_version bump still verifies")
			return
		}
	}
}

// finalChecks: every family has at most one live token; live devices hold their family's live
// token; nothing revoked refreshes or verifies; and the run exercised what it is about.
func (h *propHarness) finalChecks(devices []*propDevice) {
	ctx := h.t.Context()
	var ids []string
	if err := h.db.Store.DB().Raw("SELECT id FROM device_sessions").Scan(&ids).Error; err != nil {
		h.t.Fatal(err)
	}
	for _, id := range ids {
		if n, err := h.db.Store.CountLiveTokens(ctx, id, h.clock.Now()); err != nil || n > 1 {
			h.t.Errorf("seed %d: family %s has %d live tokens (%v)", h.seed, id, n, err)
		}
	}
	end := h.seq.Add(1)
	for _, d := range devices {
		h.checkFamily(d, d.session)
		for _, s := range d.user.sessions {
			if !h.mustBeRevoked(s, end) {
				continue
			}
			if _, err := h.insts[0].Refresh(ctx, s.live, auth.Client{}); !errors.Is(err, auth.ErrSessionRevoked) {
				h.t.Errorf("seed %d: the live token of revoked session %s: got %v, want ErrSessionRevoked", h.seed, s.id, err)
			}
		}
	}
	for _, a := range h.tokens {
		if h.accessMustBeRejected(a, end) {
			if _, err := h.insts[1].Verify(ctx, a.token); err == nil {
				h.t.Errorf("seed %d: an access token of session %s verifies after its revocation", h.seed, a.session.id)
			}
		}
	}
	for _, outcome := range []string{"refresh: rotated", "grace retry: same successor", "two tabs: rotated", "replay: family revoked", "device signed out", "verify: accepted"} {
		if h.stats[outcome] == 0 {
			h.t.Errorf("seed %d: the run never got %q; the interleaving did not exercise the rules", h.seed, outcome)
		}
	}
}
