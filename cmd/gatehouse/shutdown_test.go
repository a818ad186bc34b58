package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
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

// exitBound is how long a stopping server may take to exit before the tests fail: a failure
// bound, never a measurement. A stop takes milliseconds; the bound stays below the server's 30 s
// read timeout, after which the server would drop a silent or stuck connection on its own, so that
// a server held by one cannot pass slowly.
const exitBound = 20 * time.Second

// waitRefused dials addr until the connection is refused: the listener is closed. The server
// closes it right after logging that it is stopping, so the caller waits for that line first.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	eventually(t, exitBound, "new connections to "+addr+" refused", func() (bool, string) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return false, "a connection was accepted"
		}
		return errors.Is(err, syscall.ECONNREFUSED), err.Error()
	})
}

// waitAccepted waits until the server has accepted conn. Until then the connection waits in the
// kernel's backlog, where closing the listener resets it, and a stop would prove nothing about
// connections the server holds. Linux lists the server's end of an accepted connection in
// /proc/net/tcp with the inode of the socket the process holds, and a queued one with inode 0.
func waitAccepted(t *testing.T, conn net.Conn) {
	t.Helper()
	client, server := conn.LocalAddr().(*net.TCPAddr), conn.RemoteAddr().(*net.TCPAddr)
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skipf("no /proc/net/tcp to see whether the server accepted the connection: %v", err)
	}
	serverEnd := procNetAddr(server) + " " + procNetAddr(client)
	eventually(t, exitBound, "the server accepts the connection", func() (bool, string) {
		table, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range strings.Split(string(table), "\n") {
			f := strings.Fields(row)
			if len(f) > 9 && f[1]+" "+f[2] == serverEnd {
				return f[9] != "0", "in the backlog"
			}
		}
		return false, "not listed"
	})
}

// procNetAddr is an IPv4 address as /proc/net/tcp prints it: the address's 32 bits in host byte
// order, then the port, in hex ("0100007F:1F90" for 127.0.0.1:8080 on amd64).
func procNetAddr(a *net.TCPAddr) string {
	return fmt.Sprintf("%08X:%04X", binary.NativeEndian.Uint32(a.IP.To4()), a.Port)
}

// logTime is the time the server logged its first line with this "msg", by its own clock.
func logTime(t *testing.T, srv *server, msg string) time.Time {
	t.Helper()
	var entry struct {
		Time time.Time `json:"time"`
	}
	line := srv.waitForLog(t, msg, exitBound)
	if err := json.Unmarshal([]byte(line), &entry); err != nil || entry.Time.IsZero() {
		t.Fatalf("no time in the log line %s (%v)", line, err)
	}
	return entry.Time
}

// SIGTERM stops the server gracefully: it stops accepting connections at once, lets the
// requests in flight finish with their normal answers (here four sign-ins that queue for the
// one password-hashing slot), and exits 0 as soon as they are answered, without waiting for
// GATEHOUSE_SHUTDOWN_TIMEOUT.
func TestGracefulStop(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		// Far beyond exitBound: a server that waited for it fails instead of passing slowly,
		// and the sign-ins in flight have all the time they need on a busy machine.
		const shutdownTimeout = 10 * time.Minute
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

		// The four sign-ins cannot finish before the test sends the rest of their bodies, so
		// the listener is closed while they are in flight.
		srv.signal(t, syscall.SIGTERM)
		srv.waitForLog(t, "stopping: finishing requests in flight", exitBound)
		waitRefused(t, srv.Addr)

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

		if code, err := srv.wait(exitBound); err != nil || code != 0 {
			t.Fatalf("after SIGTERM and the answers in flight: exit status %d (%v), want 0 (GATEHOUSE_SHUTDOWN_TIMEOUT is %v)", code, err, shutdownTimeout)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM device_sessions s JOIN users u ON u.id = s.user_id WHERE u.email = 'gina@example.com' AND s.revoked_at IS NULL"); n != 4 {
			t.Errorf("%d live sessions after the four logins in flight, want 4", n)
		}
		if !strings.Contains(srv.Log(), `"msg":"stopped"`) {
			t.Errorf("the log does not say the server stopped:\n%s", srv.LogTail(10))
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
	if code, err := srv.wait(shutdownTimeout + exitBound); err != nil || code != 0 {
		t.Fatalf("after SIGTERM, with a request stuck in flight: exit status %d (%v), want 0", code, err)
	}
	// Not before: the server's own log says when it began to stop and when it gave up, so the
	// time the test took to notice plays no part.
	stopping, stopped := logTime(t, srv, "stopping: finishing requests in flight"), logTime(t, srv, "stopped")
	if gave := stopped.Sub(stopping); gave < shutdownTimeout {
		t.Errorf("the server stopped %v after it began to, by its log: it did not give the request in flight its %v", gave, shutdownTimeout)
	}
	if _, _, err := stuck.finish(); err == nil {
		t.Error("the stuck request got an answer after the process exited")
	}
}

// Connections without a request in flight do not hold a stopping server: neither a keep-alive
// connection between requests nor one that has not sent a request yet (a browser's preconnect,
// an HTTP client's spare dial). Waiting for them would make every stop take until the server's
// read timeout, or the whole GATEHOUSE_SHUTDOWN_TIMEOUT.
func TestGracefulStopDoesNotWaitForIdleConnections(t *testing.T) {
	// Far beyond exitBound: a server that waited for it fails instead of passing slowly.
	const shutdownTimeout = 10 * time.Minute
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
			waitAccepted(t, conn)

			srv.signal(t, syscall.SIGTERM)
			if code, err := srv.wait(exitBound); err != nil || code != 0 {
				t.Fatalf("after SIGTERM with a %s open: exit status %d (%v), want 0 (GATEHOUSE_SHUTDOWN_TIMEOUT is %v)", c.name, code, err, shutdownTimeout)
			}
		})
	}
}
