package auth_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/clock"
)

// BenchmarkRefreshSQLite: 16 devices refresh their own chains at once through the service on
// SQLite: batched (the server's default: the refreshes that queue for the writer share a
// transaction), with the guarded statement alone, and with every refresh down the transactional
// path. `make bench` measures the server over HTTP, beside the SQLite limit.
func BenchmarkRefreshSQLite(b *testing.B) {
	for _, path := range []string{"batched", "guarded", "transactional"} {
		b.Run(path, func(b *testing.B) {
			db := testdb.SQLite(b)
			svc := newService(b, db, clock.NewManual(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), b.TempDir())
			switch path {
			case "batched":
				auth.UseRefreshBatches(svc)
			case "transactional":
				auth.ForceTransactionalRefresh(svc)
			}
			ctx := context.Background() // as the server passes it: no Done, so the driver watches no context
			if _, err := svc.CreateUser(ctx, "bench@example.com", "Bench", testPassword); err != nil {
				b.Fatal(err)
			}
			const workers = 16
			tokens := make([]string, workers)
			for i := range tokens {
				issued, err := svc.SignIn(ctx, "bench@example.com", testPassword, auth.Client{DeviceID: fmt.Sprintf("d%d", i), IP: "192.0.2.1"})
				if err != nil {
					b.Fatal(err)
				}
				tokens[i] = issued.RefreshToken
			}
			var left atomic.Int64
			left.Store(int64(b.N))
			b.ResetTimer()
			var wg sync.WaitGroup
			for i := range workers {
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						issued, err := svc.Refresh(ctx, tokens[i], auth.Client{DeviceID: fmt.Sprintf("d%d", i), IP: "192.0.2.1"})
						if err != nil {
							b.Error(err)
							return
						}
						tokens[i] = issued.RefreshToken
					}
				})
			}
			wg.Wait()
		})
	}
}
