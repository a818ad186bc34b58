// Package mailpit runs Mailpit (github.com/axllent/mailpit), a real SMTP server that keeps what it
// receives and shows it through an HTTP API, for the tests that send mail and for tools. It builds
// the pinned version once into the user's cache (like the browser driver of e2e/), starts it on
// free loopback ports, waits until it answers, reads the delivered messages, and stops and starts
// it again on the same ports (to test delivery through an outage).
//
//	srv := mailpit.New(t, mailpit.Options{})          // skipped without Mailpit; fails under CI=true
//	transport := mail.NewSMTP(must(mail.ParseSMTPURL(srv.SMTPURL())))
//	msgs, err := srv.WaitForMessages(ctx, 1)           // newest first
//	full, err := srv.Message(ctx, msgs[0].ID)          // text, HTML, headers
//	err = srv.Stop(ctx); err = srv.Start(ctx)          // same ports, same inbox
package mailpit

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The Mailpit the tests run, and where the binary is kept.
const (
	Module  = "github.com/axllent/mailpit"
	Version = "v1.33.1"
	// EnvBinary names a Mailpit binary to run instead of the cached one.
	EnvBinary = "GATEHOUSE_MAILPIT"
)

// pollInterval is how often the harness asks again while it waits for Mailpit.
const pollInterval = 50 * time.Millisecond

// CachedPath is where Ensure keeps the binary: $XDG_CACHE_HOME or ~/.cache, then
// gatehouse/bin/mailpit.
func CachedPath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("mailpit: no cache directory: %w", err)
	}
	return filepath.Join(dir, "gatehouse", "bin", "mailpit"), nil
}

// Ensure returns the Mailpit binary to run: $GATEHOUSE_MAILPIT when set, else the cached one,
// built first with `go install Module@Version` when it is missing or another version. Test
// processes running at once build it once: they take turns on a lock file beside it. A build
// takes a few minutes on a fresh machine.
func Ensure(ctx context.Context) (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("mailpit: %s=%s: %w", EnvBinary, p, err)
		}
		return p, nil
	}
	path, err := CachedPath()
	if err != nil {
		return "", err
	}
	if isPinnedBuild(path) {
		return path, nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("mailpit: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".mailpit.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("mailpit: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("mailpit: lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if isPinnedBuild(path) { // another process built it while this one waited
		return path, nil
	}
	cmd := exec.CommandContext(ctx, "go", "install", Module+"@"+Version)
	cmd.Dir = dir // outside any module: the install ignores the current one
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("mailpit: GOBIN=%s go install %s@%s: %v\n%s", dir, Module, Version, err, tail(out, 2000))
	}
	if !isPinnedBuild(path) {
		return "", fmt.Errorf("mailpit: go install %s@%s did not leave that version at %s", Module, Version, path)
	}
	return path, nil
}

// isPinnedBuild tells whether path is a Mailpit binary built from Module at Version, by the
// build information Go writes into it (the binary's own version command says "dev" under go
// install).
func isPinnedBuild(path string) bool {
	info, err := buildinfo.ReadFile(path)
	return err == nil && info.Main.Path == Module && info.Main.Version == Version
}

// Options say how to run Mailpit. The zero value is a plain SMTP server on loopback.
type Options struct {
	// Dir keeps Mailpit's database (so a restart keeps the inbox) and its log; "" is a new
	// temporary directory, removed by Close.
	Dir string
	// Binary is the Mailpit to run; "" is Ensure's.
	Binary string
	// TLSCert and TLSKey (PEM files) make Mailpit offer STARTTLS, or, with ImplicitTLS, speak
	// TLS from the first byte (smtps).
	TLSCert, TLSKey string
	ImplicitTLS     bool
	// RequireSTARTTLS refuses mail from a client that did not start TLS (with TLSCert).
	RequireSTARTTLS bool
	// AcceptAnyAuth offers AUTH and accepts any user name and password, also without TLS.
	AcceptAnyAuth bool
	// AllowedRecipients, a regular expression, makes Mailpit refuse every other recipient with
	// "550 mailbox unavailable", as a server refuses an address for good.
	AllowedRecipients string
}

// Server is one Mailpit, running or stopped. Its ports stay the same across Stop and Start.
type Server struct {
	opts     Options
	tempDir  bool
	smtpAddr string
	webAddr  string
	client   *http.Client

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	log  *os.File
}

// Start runs Mailpit on two free loopback ports and waits until it answers.
func Start(ctx context.Context, opts Options) (*Server, error) {
	s := &Server{opts: opts, client: &http.Client{Timeout: 10 * time.Second}}
	if s.opts.Binary == "" {
		bin, err := Ensure(ctx)
		if err != nil {
			return nil, err
		}
		s.opts.Binary = bin
	}
	if s.opts.Dir == "" {
		dir, err := os.MkdirTemp("", "gatehouse-mailpit-")
		if err != nil {
			return nil, fmt.Errorf("mailpit: %w", err)
		}
		s.opts.Dir, s.tempDir = dir, true
	}
	// A port found free can be taken by another process (or another test's Mailpit) before
	// Mailpit binds it; Mailpit then exits, and a new pair of ports is tried.
	for attempt := 1; ; attempt++ {
		addrs, err := freeLoopbackAddrs(2)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("mailpit: find a free port: %w", err)
		}
		s.smtpAddr, s.webAddr = addrs[0], addrs[1]
		err = s.Start(ctx)
		if err == nil {
			return s, nil
		}
		if attempt < 5 && strings.Contains(err.Error(), "address already in use") {
			os.Remove(s.LogPath()) // the next try's log starts empty
			continue
		}
		s.Close()
		return nil, err
	}
}

// handedOut holds the ports freeLoopbackAddrs has given this process, so that two Mailpits
// started at once by one test binary never get the same port.
var handedOut = struct {
	sync.Mutex
	ports map[string]bool
}{ports: map[string]bool{}}

// freeLoopbackAddrs finds n distinct loopback addresses nothing listens on at the moment and this
// process has not handed out before. Every listener stays open until all n are found.
func freeLoopbackAddrs(n int) ([]string, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	var addrs []string
	for tries := 0; len(addrs) < n; tries++ {
		if tries == 100 {
			return nil, errors.New("no unused loopback port after 100 tries")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		addr := ln.Addr().String()
		if !handedOut.ports[addr] {
			handedOut.ports[addr] = true
			addrs = append(addrs, addr)
		}
	}
	return addrs, nil
}

// SMTPAddr is Mailpit's SMTP address, host:port.
func (s *Server) SMTPAddr() string { return s.smtpAddr }

// SMTPURL is a GATEHOUSE_SMTP_URL for this Mailpit: smtp://127.0.0.1:port, or smtps:// with
// ImplicitTLS.
func (s *Server) SMTPURL() string {
	if s.opts.ImplicitTLS {
		return "smtps://" + s.smtpAddr
	}
	return "smtp://" + s.smtpAddr
}

// WebURL is Mailpit's web inbox and API, http://127.0.0.1:port.
func (s *Server) WebURL() string { return "http://" + s.webAddr }

// LogPath is the file Mailpit's output goes to.
func (s *Server) LogPath() string { return filepath.Join(s.opts.Dir, "mailpit.log") }

// dbPath is the file Mailpit keeps its messages in; its /api/v1/info names it.
func (s *Server) dbPath() string { return filepath.Join(s.opts.Dir, "mailpit.db") }

// samePath tells whether two paths name one file (Mailpit runs in this process's directory).
func samePath(a, b string) bool {
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}

func (s *Server) args() []string {
	args := []string{
		"--smtp", s.smtpAddr, "--listen", s.webAddr,
		"--database", s.dbPath(),
		"--quiet", "--disable-version-check", "--smtp-disable-rdns",
		"--smtp-strict-rfc-headers", // refuse a bare CR in headers, as a strict server would
		"--max", "0",                // keep every message
	}
	if s.opts.TLSCert != "" {
		args = append(args, "--smtp-tls-cert", s.opts.TLSCert, "--smtp-tls-key", s.opts.TLSKey)
	}
	if s.opts.ImplicitTLS {
		args = append(args, "--smtp-require-tls")
	}
	if s.opts.RequireSTARTTLS {
		args = append(args, "--smtp-require-starttls")
	}
	if s.opts.AllowedRecipients != "" {
		args = append(args, "--smtp-allowed-recipients", s.opts.AllowedRecipients)
	}
	if s.opts.AcceptAnyAuth {
		args = append(args, "--smtp-auth-accept-any", "--smtp-auth-allow-insecure")
	}
	return args
}

// Start runs a stopped Mailpit again, on the same ports and with the same inbox, and waits until
// it answers on both.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running() {
		return errors.New("mailpit: already running")
	}
	log, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("mailpit: %w", err)
	}
	cmd := exec.Command(s.opts.Binary, s.args()...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("mailpit: start %s: %w", s.opts.Binary, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.cmd, s.done, s.log = cmd, done, log
	if err := s.waitReady(ctx, done); err != nil {
		s.stopLocked(context.Background())
		return fmt.Errorf("%w\n%s", err, s.logTail())
	}
	return nil
}

func (s *Server) running() bool {
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// waitReady polls the web API and the SMTP port until both answer, the process exits, or 60 s
// pass. The web API must be this Mailpit's, with its own database: another test's Mailpit on a
// port this one could not bind answers too. Once both answer, the process must still be running a
// moment later: a Mailpit that bound one port but not the other exits.
func (s *Server) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		if s.answers(ctx) {
			select {
			case <-exited:
			case <-time.After(2 * pollInterval):
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("mailpit exited before it answered (%s)", s.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("mailpit did not answer on %s and %s: %w", s.smtpAddr, s.webAddr, ctx.Err())
		case <-ticker.C:
		}
	}
}

func (s *Server) answers(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.WebURL()+"/api/v1/info", nil)
	if err != nil {
		return false
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return false
	}
	var info struct{ Database string }
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&info)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || !samePath(info.Database, s.dbPath()) {
		return false
	}
	conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", s.smtpAddr)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// Stop ends Mailpit (SIGTERM, then SIGKILL after 10 s or when ctx ends) and waits until it has
// exited, so its SMTP port refuses connections. The inbox is kept for Start.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked(ctx)
}

func (s *Server) stopLocked(ctx context.Context) error {
	if !s.running() {
		if s.log != nil {
			s.log.Close() // it exited by itself
			s.log = nil
		}
		return nil
	}
	defer func() {
		s.log.Close()
		s.log = nil
	}()
	s.cmd.Process.Signal(syscall.SIGTERM)
	grace := time.NewTimer(10 * time.Second)
	defer grace.Stop()
	select {
	case <-s.done:
		return nil
	case <-grace.C:
	case <-ctx.Done():
	}
	s.cmd.Process.Kill()
	<-s.done
	return nil
}

// Close stops Mailpit and removes the directory Start made (not one given in Options).
func (s *Server) Close() error {
	err := s.Stop(context.Background())
	if s.tempDir {
		os.RemoveAll(s.opts.Dir)
	}
	return err
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(s.LogPath())
	if err != nil {
		return ""
	}
	return "mailpit log:\n" + tail(b, 4000)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Address is a name and address as Mailpit's API shows them.
type Address struct{ Name, Address string }

// Summary is one message in the inbox list.
type Summary struct {
	ID        string // Mailpit's id, for Message, Headers and Raw
	MessageID string // the Message-ID header, without angle brackets
	From      *Address
	To        []Address
	Subject   string // decoded
	Created   time.Time
	Username  string // the SMTP user that sent it, when it authenticated
}

// Message is one message in full, as Mailpit parsed it.
type Message struct {
	ID        string
	MessageID string
	From      *Address
	To        []Address
	Subject   string // decoded
	Date      time.Time
	Text      string // the text/plain part, decoded
	HTML      string // the text/html part, decoded
}

// Messages lists every message received, newest first.
func (s *Server) Messages(ctx context.Context) ([]Summary, error) {
	var all []Summary
	for {
		var page struct {
			Total    int
			Messages []Summary `json:"messages"`
		}
		q := url.Values{"start": {strconv.Itoa(len(all))}, "limit": {"500"}}
		if err := s.getJSON(ctx, "/api/v1/messages?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		all = append(all, page.Messages...)
		if len(page.Messages) == 0 || len(all) >= page.Total {
			return all, nil
		}
	}
}

// WaitForMessages polls until at least n messages have arrived, and returns them all (newest
// first); it fails when ctx ends first.
func (s *Server) WaitForMessages(ctx context.Context, n int) ([]Summary, error) {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		msgs, err := s.Messages(ctx)
		if err == nil && len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-ctx.Done():
			return msgs, fmt.Errorf("mailpit: %d messages arrived, waiting for %d: %w (last error: %v)", len(msgs), n, ctx.Err(), err)
		case <-ticker.C:
		}
	}
}

// Message reads one message in full.
func (s *Server) Message(ctx context.Context, id string) (*Message, error) {
	var m Message
	if err := s.getJSON(ctx, "/api/v1/message/"+url.PathEscape(id), &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Headers reads one message's headers, as Mailpit parsed them (decoded).
func (s *Server) Headers(ctx context.Context, id string) (map[string][]string, error) {
	var h map[string][]string
	if err := s.getJSON(ctx, "/api/v1/message/"+url.PathEscape(id)+"/headers", &h); err != nil {
		return nil, err
	}
	return h, nil
}

// Raw reads one message as it arrived over SMTP.
func (s *Server) Raw(ctx context.Context, id string) ([]byte, error) {
	return s.get(ctx, "/api/v1/message/"+url.PathEscape(id)+"/raw")
}

// DeleteAll empties the inbox.
func (s *Server) DeleteAll(ctx context.Context) error {
	_, err := s.do(ctx, http.MethodDelete, "/api/v1/messages")
	return err
}

func (s *Server) getJSON(ctx context.Context, path string, v any) error {
	body, err := s.get(ctx, path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("mailpit: GET %s: %w", path, err)
	}
	return nil
}

func (s *Server) get(ctx context.Context, path string) ([]byte, error) {
	return s.do(ctx, http.MethodGet, path)
}

func (s *Server) do(ctx context.Context, method, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.WebURL()+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("mailpit: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("mailpit: %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("mailpit: %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}

// Find returns the first summary whose To holds address, or nil.
func Find(msgs []Summary, address string) *Summary {
	for i := range msgs {
		for _, to := range msgs[i].To {
			if strings.EqualFold(to.Address, address) {
				return &msgs[i]
			}
		}
	}
	return nil
}
