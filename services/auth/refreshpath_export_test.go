package auth

import (
	"context"

	"gatehouse/models"
)

// ForceTransactionalRefresh makes s decide every refresh in a transaction, so that
// one rotation suite covers both the guarded rotation and the transactional path, on both databases.
func ForceTransactionalRefresh(s *Service) { s.transactionalRefresh = true }

// UseRefreshBatches turns refresh batching on for s, as Config.RefreshBatch does on PostgreSQL.
func UseRefreshBatches(s *Service) { s.batcher = newRefreshBatcher(s.store) }

// SetRefreshBatchLimits sets how many batches of s may run at once and how large one may be
// (the benchmark weighs them). Call it before the first refresh.
func SetRefreshBatchLimits(s *Service, inFlight, size int) {
	s.batcher.maxInFlight, s.batcher.maxSize = inFlight, size
}

// FailRefreshBatches makes every shared batch statement of s fail with err, as a deadlock or a
// lost connection would, without rotating anything.
func FailRefreshBatches(s *Service, err error) {
	s.batcher.many = func(context.Context, []models.RotateParams) ([]*models.Rotation, error) { return nil, err }
}

// BatchGate shapes the batches of a service: each batch waits for a permit (Release) before it
// runs, after telling its size on Runs; Queued tells the queue's length each time a refresh
// joins it.
type BatchGate struct {
	Runs, Queued chan int
	permits      chan struct{}
}

// GateRefreshBatches puts a gate on s's batches (batching must be on). Call it before the first
// refresh.
func GateRefreshBatches(s *Service) *BatchGate {
	g := &BatchGate{Runs: make(chan int, 1000), Queued: make(chan int, 1000), permits: make(chan struct{}, 1000)}
	s.batcher.beforeRun = func(size int) {
		g.Runs <- size
		<-g.permits
	}
	s.batcher.queued = func(length int) { g.Queued <- length }
	return g
}

// Release lets n more batches run.
func (g *BatchGate) Release(n int) {
	for range n {
		g.permits <- struct{}{}
	}
}
