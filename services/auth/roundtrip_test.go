package auth_test

import (
	"context"
	"net"
	"sync"
	"testing"

	"gatehouse/models"
	"gatehouse/models/testdb"
)

// roundTrips counts database round trips at the socket: one each time the client reads an
// answer after having written a request.
type roundTrips struct {
	mu    sync.Mutex
	count int
}

func (r *roundTrips) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, r: r}, nil
}

func (r *roundTrips) reset() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.count
	r.count = 0
	return n
}

type countingConn struct {
	net.Conn
	r       *roundTrips
	written bool
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.r.mu.Lock()
	c.written = true
	c.r.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *countingConn) Read(b []byte) (int, error) {
	c.r.mu.Lock()
	if c.written {
		c.r.count++
		c.written = false
	}
	c.r.mu.Unlock()
	return c.Conn.Read(b)
}

// TestRefreshIsOneRoundTripOnPostgres counts the round trips of a happy-path refresh at the
// socket. The first refresh on a connection prepares the statement; every later one is one trip.
func TestRefreshIsOneRoundTripOnPostgres(t *testing.T) {
	counter := &roundTrips{}
	db := testdb.PostgresWith(t, models.Options{MaxOpenConns: 1, Dial: counter.dial})
	e := newEnv(t, db)
	e.user(t, "ann@example.com")
	token := e.signIn(t, "ann@example.com", "laptop").RefreshToken

	// Warm the connection's statement cache.
	for range 2 {
		next, err := e.refresh(token)
		if err != nil {
			t.Fatal(err)
		}
		token = next.RefreshToken
	}
	for i := range 5 {
		counter.reset()
		next, err := e.refresh(token)
		if err != nil {
			t.Fatal(err)
		}
		token = next.RefreshToken
		if n := counter.reset(); n != 1 {
			t.Fatalf("refresh %d took %d round trips, want 1", i, n)
		}
	}
}
