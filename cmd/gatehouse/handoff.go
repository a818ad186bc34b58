package main

import (
	"net"
	"sync"
)

// handoff accepts connections on one listening socket and hands each to whichever app takes it
// next. While the database cannot be reached at start, the stand-in app serves a loan of the port
// (lend); the full app then serves the handoff itself, and the loan ends without the socket ever
// closing, so that no connection is refused or dropped in the swap. Each accepted connection goes
// to exactly one app.
type handoff struct {
	base     net.Listener
	accepted chan accepted
	closed   chan struct{}
	once     sync.Once
}

// accepted is one result of the socket's Accept: a connection or an error for the app to judge.
type accepted struct {
	conn net.Conn
	err  error
}

func newHandoff(base net.Listener) *handoff {
	h := &handoff{base: base, accepted: make(chan accepted), closed: make(chan struct{})}
	go h.acceptLoop()
	return h
}

// acceptLoop accepts until the handoff closes, each connection only once an app is there to take it.
func (h *handoff) acceptLoop() {
	for {
		conn, err := h.base.Accept()
		select {
		case h.accepted <- accepted{conn, err}:
		case <-h.closed:
			if conn != nil {
				conn.Close()
			}
			return
		}
	}
}

// Accept takes the next connection, for the app that owns the port.
func (h *handoff) Accept() (net.Conn, error) { return h.take(nil) }

// Close closes the socket: new connections are refused from now on. Closing again does nothing
// and is not an error (fasthttp's shutdown closes its listener after serve already has).
func (h *handoff) Close() error {
	var err error
	h.once.Do(func() {
		close(h.closed)
		err = h.base.Close()
	})
	return err
}

func (h *handoff) Addr() net.Addr { return h.base.Addr() }

// take waits for a connection until the handoff or the loan (when not nil) ends.
func (h *handoff) take(loanEnded <-chan struct{}) (net.Conn, error) {
	select {
	case <-h.closed:
		return nil, net.ErrClosed
	case <-loanEnded:
		return nil, net.ErrClosed
	default:
	}
	select {
	case a := <-h.accepted:
		return a.conn, a.err
	case <-h.closed:
		return nil, net.ErrClosed
	case <-loanEnded:
		return nil, net.ErrClosed
	}
}

// lend returns a listener over the same connections whose Close ends the loan, not the socket.
func (h *handoff) lend() net.Listener { return &loan{h: h, ended: make(chan struct{})} }

type loan struct {
	h     *handoff
	ended chan struct{}
	once  sync.Once
}

func (l *loan) Accept() (net.Conn, error) { return l.h.take(l.ended) }

func (l *loan) Close() error {
	l.once.Do(func() { close(l.ended) })
	return nil
}

func (l *loan) Addr() net.Addr { return l.h.Addr() }
