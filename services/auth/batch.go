package auth

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"gatehouse/models"
)

// Refresh batching (Config.RefreshBatch): the refreshes that arrive while a batch is
// being rotated wait, and go together as the next batch, in one statement and one commit
// (models.RotateBatch), so that the primary's commit rate stops being the ceiling of refreshes.
// There is no timer: a refresh that finds no batch in flight runs at once, by itself, on its own
// goroutine, with the one-statement rotation; waiting happens only behind a batch that is
// already running, and only as long as it runs.
//
// Leadership passes from batch to batch: the caller whose batch just finished takes the queue
// (up to refreshBatchMax members) and hands it to its first member, which runs it on its own
// goroutine, then hands on the next. No goroutine of the batcher's own outlives a call.
//
// The rules are those of the one-statement rotation, member by member: a member the batch refused
// gets models.ErrNotFound and is decided in a transaction (grace retry, replay, expiry,
// revocation) after the batch committed; when the batch statement fails (a lost connection, a
// deadlock, anything), each member rotates on its own with the one-statement rotation instead of
// failing.

const (
	// refreshBatchesInFlight is how many batches may run at once on PostgreSQL, and so how many
	// refreshes run before the next ones queue. Fewer share more, but make refreshes wait that a
	// pool of 16 could have run at once. BenchmarkRefreshBatched on this machine (2 cores, quiet;
	// refreshes/s, unbatched → 2 in flight → 4 in flight): 4 workers 4,920 → 3,874 → 4,776;
	// 16 workers 6,784 → 8,479 → 7,294; 64 workers 6,043 → 12,116 → 11,083. Four gives up a
	// little under heavy load to cost nothing at four concurrent refreshes.
	refreshBatchesInFlight = 4
	// refreshBatchMax bounds one batch's size, and so its statement's time and locks.
	refreshBatchMax = 64
)

// refreshBatcher gathers refreshes into batches; see the comment above.
type refreshBatcher struct {
	one  func(ctx context.Context, p models.RotateParams) (*models.Rotation, error)
	many func(ctx context.Context, ps []models.RotateParams) ([]*models.Rotation, error)

	maxInFlight, maxSize int

	mu       sync.Mutex
	inFlight int
	queue    []*batchMember // non-empty only while inFlight == maxInFlight

	batches, shared, members, failed atomic.Uint64

	// Tests only (refreshpath_export_test.go): told of each batch before it runs, and of the
	// queue's length each time a member joins it. Set before the first refresh.
	beforeRun func(size int)
	queued    func(length int)
}

// batchMember is one refresh waiting in, or rotated by, a batch.
type batchMember struct {
	ctx  context.Context
	p    models.RotateParams
	lead chan []*batchMember // the batch this member is to run (it is the batch's first member)
	done chan struct{}       // closed once r and err are set

	r        *models.Rotation
	err      error
	fallback bool // the batch statement failed: rotate alone
}

// RefreshBatchStats counts the work of refresh batching since the service started.
type RefreshBatchStats struct {
	Batches uint64 // batches run, alone or shared
	Shared  uint64 // batches of more than one refresh
	Members uint64 // refreshes rotated through batches
	Failed  uint64 // shared batches whose statement failed (their members rotated alone)
}

// newRefreshBatcher batches on either database. On PostgreSQL a batch is one statement
// (models.RotateBatch), two at a time. On SQLite it is one transaction on the one writer
// (models.RotateGuardedTogether), of one guarded statement per refresh, so one batch at a time:
// the writer can run no more, and what a batch saves there is the commit and the writer's
// hand-over from caller to caller, once per refresh.
func newRefreshBatcher(store *models.Store) *refreshBatcher {
	if store.Dialect() == models.SQLite {
		return &refreshBatcher{one: store.RotateGuarded, many: store.RotateGuardedTogether,
			maxInFlight: 1, maxSize: refreshBatchMax}
	}
	return &refreshBatcher{one: store.RotateInOneStatement, many: store.RotateBatch,
		maxInFlight: refreshBatchesInFlight, maxSize: refreshBatchMax}
}

// rotateGuarded rotates a live token whose family may rotate, or finds nothing (ErrNotFound,
// then decide in a transaction): through the batcher when batching is on, else the guarded
// statement alone (models.(*Store).RotateGuarded).
func (s *Service) rotateGuarded(ctx context.Context, p models.RotateParams) (*models.Rotation, error) {
	if s.batcher == nil {
		return s.store.RotateGuarded(ctx, p)
	}
	return s.batcher.rotate(ctx, p)
}

// RefreshBatchStats reports refresh batching's counters (all zero when it is off).
func (s *Service) RefreshBatchStats() RefreshBatchStats {
	if s.batcher == nil {
		return RefreshBatchStats{}
	}
	b := s.batcher
	return RefreshBatchStats{Batches: b.batches.Load(), Shared: b.shared.Load(), Members: b.members.Load(), Failed: b.failed.Load()}
}

func (b *refreshBatcher) rotate(ctx context.Context, p models.RotateParams) (*models.Rotation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m := &batchMember{ctx: ctx, p: p, lead: make(chan []*batchMember, 1), done: make(chan struct{})}
	b.mu.Lock()
	if b.inFlight < b.maxInFlight { // nothing to wait behind: run now, alone
		b.inFlight++
		b.mu.Unlock()
		b.lead([]*batchMember{m})
		return m.outcome(b)
	}
	b.queue = append(b.queue, m)
	length := len(b.queue)
	b.mu.Unlock()
	if b.queued != nil {
		b.queued(length)
	}
	select {
	case batch := <-m.lead:
		b.lead(batch)
	case <-m.done:
	case <-ctx.Done():
		if b.withdraw(m) {
			return nil, ctx.Err()
		}
		// Already taken into a batch: it is rotated or refused there, like it or not.
		select {
		case batch := <-m.lead:
			b.lead(batch)
		case <-m.done:
		}
	}
	return m.outcome(b)
}

// withdraw takes a member whose caller gave up out of the queue; false if a batch took it first.
func (b *refreshBatcher) withdraw(m *batchMember) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, q := range b.queue {
		if q == m {
			b.queue = append(b.queue[:i], b.queue[i+1:]...)
			return true
		}
	}
	return false
}

// lead runs a batch on the calling goroutine, passes the lead on to the next, then wakes the
// members.
func (b *refreshBatcher) lead(batch []*batchMember) {
	b.run(batch)
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.inFlight--
		b.mu.Unlock()
	} else {
		n := min(len(b.queue), b.maxSize)
		next := b.queue[:n:n]
		b.queue = append([]*batchMember(nil), b.queue[n:]...)
		b.mu.Unlock()
		next[0].lead <- next
	}
	for _, m := range batch {
		close(m.done)
	}
}

func (b *refreshBatcher) run(batch []*batchMember) {
	if b.beforeRun != nil {
		b.beforeRun(len(batch))
	}
	b.batches.Add(1)
	b.members.Add(uint64(len(batch)))
	if len(batch) == 1 { // alone: the one statement, under the caller's own context
		m := batch[0]
		m.r, m.err = b.one(m.ctx, m.p)
		return
	}
	b.shared.Add(1)
	ps := make([]models.RotateParams, len(batch))
	for i, m := range batch {
		ps[i] = m.p
	}
	ctx, release := batchContext(batch)
	rs, err := b.many(ctx, ps)
	release()
	if err == nil && len(rs) != len(batch) {
		err = errors.New("rotate in a batch: results do not match the batch")
	}
	if err != nil {
		b.failed.Add(1)
		for _, m := range batch {
			m.fallback = true
		}
		return
	}
	for i, m := range batch {
		m.r = rs[i]
		if m.r == nil {
			m.err = models.ErrNotFound
		}
	}
}

// outcome is the member's result once its batch is done: a batch that failed is retried alone,
// under the member's own context.
func (m *batchMember) outcome(b *refreshBatcher) (*models.Rotation, error) {
	if m.fallback {
		return b.one(m.ctx, m.p)
	}
	return m.r, m.err
}

// batchContext is the context a shared batch runs under: one member giving up must not fail the
// others, so it is cancelled only once every member's context is done. It keeps the first
// member's values. release must be called when the batch is done.
func batchContext(batch []*batchMember) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(batch[0].ctx))
	var left atomic.Int64
	left.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, m := range batch {
		stops[i] = context.AfterFunc(m.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
