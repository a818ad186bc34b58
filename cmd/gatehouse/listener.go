package main

import (
	"net"
	"sync"
	"sync/atomic"
)

// trackingListener remembers its open connections and whether each has sent a byte. fasthttp's
// shutdown waits for a connection that was accepted but never sent a request (a browser's
// preconnect, a client's spare connection) until the shutdown timeout; such connections carry
// nothing in flight, so a stopping server closes them instead of waiting.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func newTrackingListener(ln net.Listener) *trackingListener {
	return &trackingListener{Listener: ln, conns: map[*trackedConn]struct{}{}}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, owner: l}
	l.mu.Lock()
	l.conns[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

// closeSilent closes every connection that has not sent a byte yet.
func (l *trackingListener) closeSilent() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if !c.spoke.Load() {
			c.Conn.Close()
		}
	}
}

type trackedConn struct {
	net.Conn
	owner *trackingListener
	spoke atomic.Bool
}

func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.spoke.Store(true)
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.owner.mu.Lock()
	delete(c.owner.conns, c)
	c.owner.mu.Unlock()
	return c.Conn.Close()
}
