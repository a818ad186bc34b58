package auth_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/clock"
)

// outcomes counts refresh outcomes as the metrics would.
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) RefreshOutcome(result string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n[result]++
}
func (o *outcomes) LoginOutcome(string)      {}
func (o *outcomes) Revoked(string, []string) {}
func (o *outcomes) count(result string) int  { o.mu.Lock(); defer o.mu.Unlock(); return o.n[result] }
func (o *outcomes) String() string           { o.mu.Lock(); defer o.mu.Unlock(); return fmt.Sprint(o.n) }
func newOutcomes() *outcomes                 { return &outcomes{n: map[string]int{}} }
func (e *batchEnv) history(t *testing.T, sid string) int64 {
	t.Helper()
	return e.db.Count(t, "SELECT COUNT(*) FROM refresh_tokens WHERE session_id = ?", sid)
}

// batchEnv is a service on PostgreSQL with refresh batching on and a gate on its batches.
type batchEnv struct {
	*env
	gate     *auth.BatchGate
	outcomes *outcomes
}

func newBatchEnv(t *testing.T) *batchEnv {
	t.Helper()
	db := testdb.Postgres(t) // skips without GATEHOUSE_TEST_POSTGRES; SQLite runs the same batcher (TestRotationProperties/sqlite-batched, models/batch_test.go)
	c := clock.NewManual(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	o := newOutcomes()
	svc := newServiceWith(t, db, c, t.TempDir(), func(cfg *auth.Config, deps *auth.Deps) {
		cfg.RefreshBatch = true
		deps.Observer = o
	})
	e := &batchEnv{env: &env{db: db, svc: svc, clock: c, ctx: context.Background()}, outcomes: o}
	// One batch at a time, so that a batch held at the gate makes the next refreshes queue.
	auth.SetRefreshBatchLimits(svc, 1, 64)
	e.gate = auth.GateRefreshBatches(svc)
	e.user(t, "batch@example.com")
	return e
}

type refreshResult struct {
	issued *auth.Issued
	err    error
}

// refreshAsync starts a refresh; its result arrives on the channel.
func (e *batchEnv) refreshAsync(ctx context.Context, token string) <-chan refreshResult {
	ch := make(chan refreshResult, 1)
	go func() {
		issued, err := e.svc.Refresh(ctx, token, auth.Client{IP: "192.0.2.2"})
		ch <- refreshResult{issued, err}
	}()
	return ch
}

// holdABatch starts a refresh of a session of its own that runs as a batch of one and waits at
// the gate: refreshes started after it queue behind it until the gate lets batches through.
func (e *batchEnv) holdABatch(t *testing.T) <-chan refreshResult {
	t.Helper()
	blocker := e.refreshAsync(e.ctx, e.signIn(t, "batch@example.com", "blocker").RefreshToken)
	select {
	case size := <-e.gate.Runs:
		if size != 1 {
			t.Fatalf("the first refresh ran in a batch of %d, want 1", size)
		}
	case r := <-blocker:
		t.Fatalf("the refresh did not go through the batcher (%v)", r.err)
	}
	return blocker
}

// waitQueued waits until n refreshes joined the queue.
func (e *batchEnv) waitQueued(t *testing.T, n int) {
	t.Helper()
	for range n {
		recv(t, e.gate.Queued)
	}
}

// recv receives from ch, failing the test after 30 s: a batch that never runs, or a refresh that
// never answers, is a failure to see, not a hang until the suite's timeout.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("nothing arrived on a %T within 30 s", ch)
		var zero T
		return zero
	}
}

func ok(t *testing.T, name string, r refreshResult) *auth.Issued {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s: %v", name, r.err)
	}
	return r.issued
}

// TestBatchedRefreshOfOneTokenTwice: two refreshes of one token in one batch (two tabs) rotate
// the family once; the other becomes a grace retry and gets the same successor.
func TestBatchedRefreshOfOneTokenTwice(t *testing.T) {
	e := newBatchEnv(t)
	first := e.signIn(t, "batch@example.com", "tabs")
	blocker := e.holdABatch(t)
	a, b := e.refreshAsync(e.ctx, first.RefreshToken), e.refreshAsync(e.ctx, first.RefreshToken)
	e.waitQueued(t, 2)
	e.gate.Release(2)
	ok(t, "blocker", recv(t, blocker))
	if size := recv(t, e.gate.Runs); size != 2 {
		t.Fatalf("the two tabs ran in a batch of %d, want 2", size)
	}
	ra, rb := ok(t, "tab a", recv(t, a)), ok(t, "tab b", recv(t, b))
	if ra.RefreshToken != rb.RefreshToken {
		t.Errorf("the two tabs got different successors: a fork")
	}
	if n := e.outcomes.count(auth.RefreshOK); n != 2 { // the blocker and one tab
		t.Errorf("outcomes %v: want 2 rotations (the blocker and one tab)", e.outcomes)
	}
	if n := e.outcomes.count(auth.RefreshGraceRetry); n != 1 {
		t.Errorf("outcomes %v: want 1 grace retry", e.outcomes)
	}
	if n := e.history(t, first.SessionID); n != 2 {
		t.Errorf("the family has %d tokens in its history, want 2: one rotation", n)
	}
	e.gate.Release(1)
	if _, err := e.refresh(ra.RefreshToken); err != nil {
		t.Errorf("the successor does not refresh: %v", err)
	}
	if s := e.svc.RefreshBatchStats(); s.Shared != 1 || s.Failed != 0 {
		t.Errorf("batch stats %+v: want one shared batch, none failed", s)
	}
}

// TestReplayInABatchRotatesNothing: a replayed token that lands in a batch is refused there,
// revokes its family in its own transaction, and rotates nothing; the batch's other member is
// rotated.
func TestReplayInABatchRotatesNothing(t *testing.T) {
	e := newBatchEnv(t)
	victim := e.signIn(t, "batch@example.com", "victim")
	e.gate.Release(1)
	rotated, err := e.refresh(victim.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, e.gate.Runs)
	e.clock.Advance(time.Minute) // out of the grace window: presenting victim's first token is a replay
	other := e.signIn(t, "batch@example.com", "other")

	blocker := e.holdABatch(t)
	replay, legit := e.refreshAsync(e.ctx, victim.RefreshToken), e.refreshAsync(e.ctx, other.RefreshToken)
	e.waitQueued(t, 2)
	e.gate.Release(2)
	ok(t, "blocker", recv(t, blocker))
	if size := recv(t, e.gate.Runs); size != 2 {
		t.Fatalf("replay and refresh ran in a batch of %d, want 2", size)
	}
	if r := recv(t, replay); !errors.Is(r.err, auth.ErrTokenReused) {
		t.Errorf("replay in a batch: %v, want ErrTokenReused", r.err)
	}
	ok(t, "the other member", recv(t, legit))
	if n := e.history(t, victim.SessionID); n != 2 {
		t.Errorf("the replayed family has %d tokens in its history, want 2: the replay rotated", n)
	}
	d, err := e.db.Store.SessionByID(e.ctx, victim.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if d.RevokedAt == nil || string(d.TokenHash) != string(hash(rotated.RefreshToken)) {
		t.Errorf("after the replay the family is revoked=%v with its live token changed=%v", d.RevokedAt != nil, string(d.TokenHash) != string(hash(rotated.RefreshToken)))
	}
	e.gate.Release(1)
	if _, err := e.refresh(rotated.RefreshToken); err == nil {
		t.Errorf("the replayed family's live token still refreshes")
	}
}

// TestFailedBatchFallsBackPerMember: when a shared batch's statement fails (a deadlock here),
// each member rotates alone instead of failing.
func TestFailedBatchFallsBackPerMember(t *testing.T) {
	e := newBatchEnv(t)
	auth.FailRefreshBatches(e.svc, &pgconn.PgError{Code: "40P01", Message: "deadlock detected"})
	var members []*auth.Issued
	for i := range 3 {
		members = append(members, e.signIn(t, "batch@example.com", fmt.Sprintf("member-%d", i)))
	}
	blocker := e.holdABatch(t)
	var results []<-chan refreshResult
	for _, m := range members {
		results = append(results, e.refreshAsync(e.ctx, m.RefreshToken))
	}
	e.waitQueued(t, len(members))
	e.gate.Release(2)
	ok(t, "blocker", recv(t, blocker))
	if size := recv(t, e.gate.Runs); size != len(members) {
		t.Fatalf("the members ran in a batch of %d, want %d", size, len(members))
	}
	for i, ch := range results {
		ok(t, fmt.Sprintf("member %d", i), recv(t, ch))
		if n := e.history(t, members[i].SessionID); n != 2 {
			t.Errorf("member %d's family has %d tokens in its history, want 2", i, n)
		}
	}
	if s := e.svc.RefreshBatchStats(); s.Failed != 1 {
		t.Errorf("batch stats %+v: want one failed batch", s)
	}
}

// TestLoneRefreshRunsAtOnce: with no batch in flight, a refresh runs at once as a batch of one;
// it never joins a queue. (There is no timer: nothing else could make it wait.)
func TestLoneRefreshRunsAtOnce(t *testing.T) {
	e := newBatchEnv(t)
	e.gate.Release(3)
	token := e.signIn(t, "batch@example.com", "lone").RefreshToken
	for i := range 3 {
		issued, err := e.refresh(token)
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		token = issued.RefreshToken
		if size := recv(t, e.gate.Runs); size != 1 {
			t.Errorf("refresh %d ran in a batch of %d, want 1", i, size)
		}
	}
	if n := len(e.gate.Queued); n != 0 {
		t.Errorf("%d lone refreshes joined a queue", n)
	}
	if s := e.svc.RefreshBatchStats(); s.Batches != 3 || s.Shared != 0 {
		t.Errorf("batch stats %+v: want 3 batches of one", s)
	}
}

// TestCancelledBatchMember: a member whose caller gives up while it waits leaves the queue and
// rotates nothing; one that gives up while its batch runs does not fail the others.
func TestCancelledBatchMember(t *testing.T) {
	t.Run("while queued", func(t *testing.T) {
		e := newBatchEnv(t)
		quitter, stayer := e.signIn(t, "batch@example.com", "quitter"), e.signIn(t, "batch@example.com", "stayer")
		blocker := e.holdABatch(t)
		ctx, cancel := context.WithCancel(e.ctx)
		q := e.refreshAsync(ctx, quitter.RefreshToken)
		e.waitQueued(t, 1)
		s := e.refreshAsync(e.ctx, stayer.RefreshToken)
		e.waitQueued(t, 1)
		cancel()
		if r := recv(t, q); !errors.Is(r.err, context.Canceled) {
			t.Errorf("cancelled while queued: %v, want context.Canceled", r.err)
		}
		e.gate.Release(2)
		ok(t, "blocker", recv(t, blocker))
		ok(t, "the member that stayed", recv(t, s))
		if size := recv(t, e.gate.Runs); size != 1 {
			t.Errorf("the next batch has %d members, want 1: the cancelled one left", size)
		}
		if n := e.history(t, quitter.SessionID); n != 1 {
			t.Errorf("the cancelled member's family has %d tokens in its history, want 1", n)
		}
	})
	t.Run("while its batch runs", func(t *testing.T) {
		e := newBatchEnv(t)
		quitter, stayer := e.signIn(t, "batch@example.com", "quitter"), e.signIn(t, "batch@example.com", "stayer")
		blocker := e.holdABatch(t)
		ctx, cancel := context.WithCancel(e.ctx)
		q, s := e.refreshAsync(ctx, quitter.RefreshToken), e.refreshAsync(e.ctx, stayer.RefreshToken)
		e.waitQueued(t, 2)
		e.gate.Release(1)
		ok(t, "blocker", recv(t, blocker))
		if size := recv(t, e.gate.Runs); size != 2 { // formed, waiting at the gate
			t.Fatalf("batch of %d, want 2", size)
		}
		cancel()
		e.gate.Release(1)
		ok(t, "the member that stayed", recv(t, s))
		if r := recv(t, q); r.err != nil && !errors.Is(r.err, context.Canceled) {
			t.Errorf("the cancelled member: %v", r.err)
		}
		if n := e.history(t, stayer.SessionID); n != 2 {
			t.Errorf("the member that stayed has %d tokens in its history, want 2", n)
		}
	})
}

// TestConcurrentBatchedRefreshesShareBatches: refreshes of many devices at once really go in
// shared batches, and each family is rotated exactly once per refresh.
func TestConcurrentBatchedRefreshesShareBatches(t *testing.T) {
	e := newBatchEnv(t)
	const devices = 8
	var tokens []*auth.Issued
	for i := range devices {
		tokens = append(tokens, e.signIn(t, "batch@example.com", fmt.Sprintf("device-%d", i)))
	}
	blocker := e.holdABatch(t)
	var results []<-chan refreshResult
	for _, tok := range tokens {
		results = append(results, e.refreshAsync(e.ctx, tok.RefreshToken))
	}
	e.waitQueued(t, devices)
	e.gate.Release(1000)
	ok(t, "blocker", recv(t, blocker))
	for i, ch := range results {
		ok(t, fmt.Sprintf("device %d", i), recv(t, ch))
		if n := e.history(t, tokens[i].SessionID); n != 2 {
			t.Errorf("device %d's family has %d tokens in its history, want 2", i, n)
		}
	}
	if s := e.svc.RefreshBatchStats(); s.Shared != 1 || s.Members != devices+1 {
		t.Errorf("batch stats %+v: want one shared batch of %d after the blocker", s, devices)
	}
}

// BenchmarkRefreshBatched drives concurrent refreshes through Service.Refresh on PostgreSQL,
// with batching off and on, at 1, 16 and 64 workers; each worker refreshes its own device's
// session in a loop. It reports refreshes/s, the median latency and the mean batch size; "on-2"
// lets two batches run at once (refreshBatchesInFlight weighs it).
//
//	GATEHOUSE_TEST_POSTGRES=postgres://... go test -run '^$' -bench RefreshBatched -benchtime 3s ./services/auth/
func BenchmarkRefreshBatched(b *testing.B) {
	for _, workers := range []int{1, 4, 16, 64} {
		for _, mode := range []struct {
			name     string
			inFlight int
		}{{"off", 0}, {"on", 1}, {"on-2", 2}, {"on-4", 4}} {
			b.Run(fmt.Sprintf("workers=%d/batch=%s", workers, mode.name), func(b *testing.B) {
				benchRefresh(b, workers, mode.inFlight)
			})
		}
	}
}

// benchRefresh runs the benchmark with up to inFlight batches at once; 0: batching off.
func benchRefresh(b *testing.B, workers int, inFlight int) {
	batched := inFlight > 0
	db := testdb.Postgres(b)
	c := clock.NewManual(time.Now())
	svc := newService(b, db, c, b.TempDir())
	if batched {
		auth.UseRefreshBatches(svc)
		auth.SetRefreshBatchLimits(svc, inFlight, 64)
	}
	ctx := context.Background()
	tokens := make([]string, workers)
	for i := range tokens {
		email := fmt.Sprintf("bench%d@example.com", i/16) // under the per-user cap on sessions
		if i%16 == 0 {
			if _, err := svc.CreateUser(ctx, email, "Bench", testPassword); err != nil {
				b.Fatal(err)
			}
		}
		issued, err := svc.SignIn(ctx, email, testPassword, auth.Client{DeviceID: fmt.Sprintf("bench-%d", i), IP: "192.0.2.1"})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = issued.RefreshToken
	}
	var (
		next      atomic.Int64
		latencies = make([][]time.Duration, workers)
		wg        sync.WaitGroup
		failed    atomic.Value
	)
	b.ResetTimer()
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				issued, err := svc.Refresh(ctx, tokens[w], auth.Client{IP: "192.0.2.2"})
				if err != nil {
					failed.Store(err)
					return
				}
				latencies[w] = append(latencies[w], time.Since(t0))
				tokens[w] = issued.RefreshToken
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	all := slices.Concat(latencies...)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "refreshes/s")
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	}
	if batched {
		s := svc.RefreshBatchStats()
		b.ReportMetric(float64(s.Members)/float64(max(s.Batches, 1)), "rows/batch")
	}
}
