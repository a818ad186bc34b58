package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatehouse/models/testdb"
)

// pendingLogin is a POST /auth/login in flight: the server has read its headers (it answered
// 100 Continue) and half of its body; the test holds back the rest.
type pendingLogin struct {
	conn net.Conn
	br   *bufio.Reader
	rest string
}

func beginLogin(t *testing.T, srv *server, email, deviceID string) *pendingLogin {
	t.Helper()
	conn, err := net.DialTimeout("tcp", srv.Addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	body := loginBody(email, password)
	fmt.Fprintf(conn, "POST /auth/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nX-Device-Id: %s\r\n"+
		"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n", srv.Addr, deviceID, len(body))
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 100 ") {
		t.Fatalf("want 100 Continue for a login with Expect: 100-continue, got %q (%v)", status, err)
	}
	if blank, err := br.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("after 100 Continue: %q (%v)", blank, err)
	}
	half := len(body) / 2
	if _, err := io.WriteString(conn, body[:half]); err != nil {
		t.Fatal(err)
	}
	return &pendingLogin{conn: conn, br: br, rest: body[half:]}
}

// finish sends the rest of the body and reads the answer.
func (p *pendingLogin) finish() (status int, body []byte, err error) {
	if _, err := io.WriteString(p.conn, p.rest); err != nil {
		return 0, nil, err
	}
	p.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// waitRefused dials addr until the connection is refused: the listener is closed.
func waitRefused(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return
		}
		if err == nil {
			conn.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("new connections to %s are still accepted %v after SIGTERM (last: %v)", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SIGTERM stops the server gracefully: it stops accepting connections at once, lets the
// requests in flight finish with their normal answers (here four sign-ins that queue for the
// one password-hashing slot), and exits 0 well within GATEHOUSE_SHUTDOWN_TIMEOUT.
func TestGracefulStop(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		const shutdownTimeout = 10 * time.Second
		srv := startServer(t, db.URL, map[string]string{
			"GATEHOUSE_SHUTDOWN_TIMEOUT":     shutdownTimeout.String(),
			"GATEHOUSE_PASSWORD_CONCURRENCY": "1",
		})
		if r := srv.gatehouse(t, password+"\n", "user", "create", "--email", "gina@example.com", "--password-stdin"); r.code != 0 {
			t.Fatalf("user create:\n%s", r)
		}
		var pending []*pendingLogin
		for i := range 4 {
			pending = append(pending, beginLogin(t, srv, "gina@example.com", fmt.Sprintf("gina-device-%02d", i)))
		}

		srv.signal(t, syscall.SIGTERM)
		stopping := time.Now()
		waitRefused(t, srv.Addr, shutdownTimeout)
		t.Logf("%s: new connections refused %v after SIGTERM", db.Name, time.Since(stopping).Round(time.Millisecond))

		type answer struct {
			status int
			body   []byte
			err    error
		}
		answers := make(chan answer, len(pending))
		for _, p := range pending {
			go func() {
				status, body, err := p.finish()
				answers <- answer{status, body, err}
			}()
		}
		for range pending {
			a := <-answers
			var token struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
			}
			if a.err != nil || a.status != http.StatusOK || json.Unmarshal(a.body, &token) != nil || token.AccessToken == "" || token.TokenType != "Bearer" {
				t.Errorf("a login in flight at SIGTERM: status %d, body %s, error %v; want 200 and a token body", a.status, a.body, a.err)
			}
		}

		code, err := srv.wait(shutdownTimeout + 10*time.Second)
		elapsed := time.Since(stopping)
		t.Logf("%s: exited with status %d %v after SIGTERM", db.Name, code, elapsed.Round(time.Millisecond))
		if err != nil || code != 0 {
			t.Fatalf("after SIGTERM: exit status %d (%v), want 0", code, err)
		}
		if elapsed > shutdownTimeout+5*time.Second {
			t.Errorf("took %v to stop, GATEHOUSE_SHUTDOWN_TIMEOUT is %v", elapsed, shutdownTimeout)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM device_sessions s JOIN users u ON u.id = s.user_id WHERE u.email = 'gina@example.com' AND s.revoked_at IS NULL"); n != 4 {
			t.Errorf("%d live sessions after the four logins in flight, want 4", n)
		}
		if log := srv.log(); !strings.Contains(log, `"msg":"stopped"`) {
			t.Errorf("the log does not say the server stopped:\n%s", srv.logTail(10))
		}
	})
}

// A request that never finishes does not hold the process: it exits 0 once
// GATEHOUSE_SHUTDOWN_TIMEOUT has passed, not before.
func TestGracefulStopGivesUpAfterTimeout(t *testing.T) {
	const shutdownTimeout = 2 * time.Second
	db := testdb.SQLite(t)
	srv := startServer(t, db.URL, map[string]string{"GATEHOUSE_SHUTDOWN_TIMEOUT": shutdownTimeout.String()})
	stuck := beginLogin(t, srv, "nobody@example.com", "stuck-device-01")

	srv.signal(t, syscall.SIGTERM)
	stopping := time.Now()
	code, err := srv.wait(shutdownTimeout + 15*time.Second)
	elapsed := time.Since(stopping)
	t.Logf("exited with status %d %v after SIGTERM, with a request stuck in flight", code, elapsed.Round(time.Millisecond))
	if err != nil || code != 0 {
		t.Fatalf("after SIGTERM: exit status %d (%v), want 0", code, err)
	}
	if elapsed < shutdownTimeout-200*time.Millisecond {
		t.Errorf("exited %v after SIGTERM: it did not give the request in flight its %v", elapsed, shutdownTimeout)
	}
	if elapsed > shutdownTimeout+8*time.Second {
		t.Errorf("exited %v after SIGTERM, GATEHOUSE_SHUTDOWN_TIMEOUT is %v", elapsed, shutdownTimeout)
	}
	if _, _, err := stuck.finish(); err == nil {
		t.Error("the stuck request got an answer after the process exited")
	}
}

// Connections without a request in flight do not hold a stopping server: neither a keep-alive
// connection between requests nor one that has not sent a request yet (a browser's preconnect,
// an HTTP client's spare dial). net/http closes the latter 5 s after it was opened at the latest;
// waiting for it until GATEHOUSE_SHUTDOWN_TIMEOUT would make every stop take the whole timeout.
func TestGracefulStopDoesNotWaitForIdleConnections(t *testing.T) {
	const shutdownTimeout = 20 * time.Second
	cases := []struct {
		name string
		open func(t *testing.T, srv *server) net.Conn
	}{
		{"keep-alive connection between requests", func(t *testing.T, srv *server) net.Conn {
			conn, err := net.DialTimeout("tcp", srv.Addr, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", srv.Addr)
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /healthz: %v %v", resp, err)
			}
			resp.Body.Close()
			return conn
		}},
		{"connection that has not sent a request", func(t *testing.T, srv *server) net.Conn {
			conn, err := net.DialTimeout("tcp", srv.Addr, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			return conn
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := startServer(t, testdb.SQLite(t).URL, map[string]string{"GATEHOUSE_SHUTDOWN_TIMEOUT": shutdownTimeout.String()})
			conn := c.open(t, srv)
			defer conn.Close()
			time.Sleep(100 * time.Millisecond) // the server has accepted it

			srv.signal(t, syscall.SIGTERM)
			stopping := time.Now()
			code, err := srv.wait(shutdownTimeout + 10*time.Second)
			elapsed := time.Since(stopping)
			t.Logf("exited with status %d %v after SIGTERM", code, elapsed.Round(time.Millisecond))
			if err != nil || code != 0 {
				t.Fatalf("after SIGTERM: exit status %d (%v), want 0", code, err)
			}
			if elapsed > shutdownTimeout/2 {
				t.Errorf("a %s held the stop for %v (GATEHOUSE_SHUTDOWN_TIMEOUT %v): no request was in flight", c.name, elapsed.Round(time.Millisecond), shutdownTimeout)
			}
		})
	}
}
